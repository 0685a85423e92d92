"""devhost's memoisations of SDK work change nothing the app can see.

The codec's strict-typing switch (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING) is read once per episode
instead of once per value (devhost/sdk_speedups.py). Strict and loose mode decode a custom object
differently (azure/functions/_durable_functions.py `df_loads`: loose reconstructs it, strict
refuses an envelope without an expected type), so a switch that stuck across episodes, or was
read at import, would show here.

The replay-path patches (cached decoding of earlier results and encoding of re-created actions'
inputs, the executor loop, `CallActivityAction.to_json`) are checked by what the orchestrator
sees on a full replay (a mutated result, inputs that are equal but of another type or sign, the
SDK's warning on every decode, `is_replaying`), and by replaying every episode of the feature
app's scenarios with the patched SDK and with the SDK's own methods side by side.
"""

from __future__ import annotations

import copy
import logging
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.harness import DurableHarness
from devhost.history import EventType

STRICT = "AZURE_FUNCTIONS_DURABLE_STRICT_TYPING"


class Parcel:
    def __init__(self, weight: int) -> None:
        self.weight = weight

    @staticmethod
    def to_json(obj: Parcel) -> dict[str, Any]:
        return {"weight": obj.weight}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Parcel:
        return Parcel(data["weight"])


app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def weigh(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    parcel = yield ctx.call_activity("pack", 3)
    return parcel.weight * 2  # needs the object back, which only loose mode gives without a type


@app.activity_trigger(input_name="weight")
def pack(weight: int) -> Parcel:
    return Parcel(weight)


@pytest.mark.filterwarnings("ignore:azure.functions Durable JSON codec:DeprecationWarning")
def test_strict_typing_is_read_per_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT, raising=False)
    with DurableHarness(app) as loose:
        assert loose.run_to_completion("weigh").output == 6
    monkeypatch.setenv(STRICT, "1")
    with DurableHarness(app) as strict:
        status = strict.run_to_completion("weigh")
        assert status.runtime_status.value == "Failed"
        assert "strict mode requires expected_type" in str(status.output)
    monkeypatch.delenv(STRICT)
    with DurableHarness(app) as loose_again:
        assert loose_again.run_to_completion("weigh").output == 6


# ----------------------------------------------------------------- replay-path patches
# devhost/sdk_speedups.py `_cache_codec`, `_fast_executor`, `_fast_activity_to_json`: each test
# below fails if a patch changed what the orchestrator sees on a full replay.


@app.activity_trigger(input_name="value")
def fresh_list(value: Any) -> list[Any]:
    return [1]


@app.activity_trigger(input_name="value")
def fresh_dict(value: Any) -> dict[str, Any]:
    return {"n": 1}


@app.activity_trigger(input_name="value")
def describe(value: Any) -> str:
    return repr(value)


@app.activity_trigger(input_name="value")
def spell(value: Any) -> Any:
    return ["zero", "one", "two"][value]


@app.orchestration_trigger(context_name="ctx")
def hoard(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Mutates each result; a later replay must decode a fresh one."""
    untyped = yield ctx.call_activity("fresh_list")  # df_loads(..., expected_type=None)
    untyped.append("mutated")
    typed = yield ctx.call_activity(fresh_list)  # expected_type=list, from the annotation
    typed.append("mutated")
    mapping = yield ctx.call_activity("fresh_dict")
    mapping["n"] += 1
    last = yield ctx.call_activity("fresh_list")
    return [untyped, typed, mapping, last]


DESCRIBED = [1, True, "1", None, 0, False, "", 0.0, -0.0, 1.0, "true"]


@app.orchestration_trigger(context_name="ctx")
def describe_all(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    seen = []
    for value in DESCRIBED:  # one per episode: each later episode re-creates the earlier actions
        seen.append((yield ctx.call_activity("describe", value)))
    return seen


@app.orchestration_trigger(context_name="ctx")
def mislabelled(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    first = yield ctx.call_activity("spell", 1, expected_type=int)  # a str: the SDK warns when decoding
    second = yield ctx.call_activity("spell", 2)
    third = yield ctx.call_activity("spell", 0)
    return [first, second, third]


@app.orchestration_trigger(context_name="ctx")
def replay_flags(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    flags = []
    for i in range(3):
        flags.append(ctx.is_replaying)
        ctx.set_custom_status(list(flags))
        yield ctx.call_activity("describe", i)
    flags.append(ctx.is_replaying)
    return flags


@app.orchestration_trigger(context_name="ctx")
def timer_value(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    fired = yield ctx.create_timer(ctx.current_utc_datetime + timedelta(minutes=1))
    echoed = yield ctx.call_activity("describe", "after the timer")
    return [fired, echoed]


def test_the_replay_patches_apply_to_the_pinned_sdk() -> None:
    from devhost import sdk_speedups

    sdk_speedups.apply()
    # requirements.txt pins the SDK these were written against; another version keeps its own code.
    assert set(sdk_speedups.applied) == {"codec", "executor", "to_json", "add_to_actions"}


def test_a_mutated_result_is_decoded_afresh_on_every_replay() -> None:
    with DurableHarness(app, replay="full") as harness:
        status = harness.run_to_completion("hoard")
    assert status.runtime_status.value == "Completed"
    # Shared between replays, each list would hold one "mutated" per later episode.
    assert status.output == [[1, "mutated"], [1, "mutated"], {"n": 2}, [1]]


def test_action_inputs_keep_their_type_and_sign() -> None:
    with DurableHarness(app, replay="full") as harness:
        status = harness.run_to_completion("describe_all")
    # True == 1 and 0.0 == -0.0 with equal hashes: a cache keyed on the value alone would mix them.
    assert status.output == [repr(v) for v in DESCRIBED]


def test_an_incompatible_result_is_warned_about_on_every_replay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="azure.functions.DurableFunctions")
    with DurableHarness(app, replay="full") as harness:
        status = harness.run_to_completion("mislabelled")
    assert status.output == ["one", "two", "zero"]
    history = status.history
    completed = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.TASK_COMPLETED)
    # The episode that received the result, and every later one (full replay decodes it again).
    decoding_episodes = 1 + sum(ev["EventType"] == EventType.ORCHESTRATOR_STARTED for ev in history[completed:])
    warnings = [r for r in caplog.records if "is not compatible with expected type" in r.getMessage()]
    assert decoding_episodes == 3
    assert len(warnings) == decoding_episodes


def test_is_replaying_is_what_the_sdk_says() -> None:
    with DurableHarness(app, replay="full") as harness:
        status = harness.run_to_completion("replay_flags")
    assert status.output == [True, True, True, False]


def test_a_fired_timer_gives_none() -> None:
    with DurableHarness(app, replay="full") as harness:
        status = harness.run_to_completion("timer_value")
    assert status.output == [None, "'after the timer'"]


def _feature_scenarios(harness: DurableHarness) -> None:
    """Feature-app orchestrations covering events, timers, sub-orchestrations, continue-as-new,
    entities, caught and uncaught failures."""
    for name, input in [
        ("hello_sequence", "Tokyo"),
        ("fan_out_fan_in", ["a", "b", "c"]),
        ("activity_error_handled", "nope"),
        ("activity_error_unhandled", "nope"),
        ("fan_out_with_failure", None),
        ("parent_of", {"child": "child_double", "input": 21}),
        ("parent_of", {"child": "child_fails", "input": 1, "catch": True}),
        ("counter_generations", {"n": 0, "limit": 2}),
        ("entity_user", "diff"),
        ("boom", "x"),
        ("sleeper", 3),
    ]:
        harness.run_to_completion(name, input)
    for name, input, event in [("first_of_two_events", None, "Right"), ("replay_values", None, "Go")]:
        iid = harness.start(name, input)
        harness.run(iid)
        harness.raise_event(iid, event, {"from": "test"})
        harness.run(iid)


def test_every_episode_gives_what_the_sdk_own_code_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each episode's context, replayed by the patched SDK and by the SDK's own methods: the same
    state JSON (actions, output, custom status) or the same error."""
    from azure.durable_functions.orchestrator import Orchestrator

    from devhost import sdk_speedups

    from .apps.feature_app import app as feature_app

    episodes: list[tuple[Any, Any]] = []
    handle = Orchestrator.handle

    def capture(self: Orchestrator, context: Any) -> str:
        episodes.append((self.fn, copy.deepcopy(context)))
        return handle(self, context)

    with monkeypatch.context() as patch:
        patch.setattr(Orchestrator, "handle", capture)
        with DurableHarness(feature_app, replay="full") as harness:
            _feature_scenarios(harness)
        with DurableHarness(app, replay="full") as harness:
            for name in ("replay_flags", "hoard", "describe_all", "mislabelled", "timer_value"):
                harness.run_to_completion(name)
    assert len(episodes) > 40

    # The same episodes as a backend that never sets IsPlayed sends them: the SDK then tells replay
    # from new events by the last OrchestratorStarted alone.
    for fn, context in list(episodes):
        unplayed = copy.deepcopy(context)
        for event in unplayed.histories:
            event._is_played = False
        episodes.append((fn, unplayed))

    def outcomes() -> list[tuple[str, str]]:
        results = []
        for fn, context in episodes:
            try:
                results.append(("state", Orchestrator(fn).handle(copy.deepcopy(context))))
            except Exception as exc:
                results.append(("error", str(exc)))
        return results

    patched = outcomes()
    with monkeypatch.context() as patch:
        for owner, name, original in sdk_speedups.replaced:
            patch.setattr(owner, name, original)
        unpatched = outcomes()
    assert patched == unpatched
    assert {kind for kind, _ in patched} == {"state", "error"}
