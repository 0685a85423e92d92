"""The replay cache (devhost.sdk_replay) hands the SDK what the context JSON would.

Tests internals (not devhost's public API): imports `devhost.sdk_replay`, `devhost.orchestration`.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models import DurableOrchestrationContext

from devhost.harness import DurableHarness
from devhost.history import EventType, RuntimeStatus
from devhost.orchestration import EngineOptions
from devhost.sdk_replay import ReplayCache

from .apps.feature_app import app

chain_app = df.DFApp()


@chain_app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    value = 0
    for _ in range(context.get_input()):
        value = yield context.call_activity("plus_one", value)
    if value < 0:
        raise ValueError("negative")
    return value


@chain_app.orchestration_trigger(context_name="context")
def chain_then_race(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """A chain long enough that later episodes resume, then a timer cancelled inside a task_any."""
    value = 0
    for _ in range(20):
        value = yield context.call_activity("plus_one", value)
    context.set_custom_status({"value": value})
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=2))
    first = context.wait_for_external_event("First")
    winner = yield context.task_any([first, timer])
    if winner != first:
        return "timer won"
    timer.cancel()
    second = yield context.wait_for_external_event("Second")
    return [value, first.result, second]


@chain_app.activity_trigger(input_name="value")
def plus_one(value: int) -> int:
    return value + 1


def _sdk_view(objects: list[Any]) -> list[dict[str, Any]]:
    return [dict(vars(o)) for o in objects]


def _json_route(history: list[dict[str, Any]]) -> list[Any]:
    text = json.dumps({"history": history, "instanceId": "x", "isReplaying": False, "parentInstanceId": None})
    return list(DurableOrchestrationContext.from_json(text).histories)


def _run(
    name: str, cache: bool, events: tuple[str, ...] = (), input: Any = "in", replay: str = "full"
) -> tuple[Any, list[dict[str, Any]]]:
    counter = itertools.count()
    engine = EngineOptions(new_id=lambda: f"{next(counter):032x}", replay=replay)
    if not cache:
        engine.replay_cache = None
    with DurableHarness(app, engine=engine) as harness:
        iid = harness.start(name, input, instance_id="fixed")
        for event in events:
            harness.run(iid)
            harness.raise_event(iid, event)
        status = harness.run(iid)
        return status.output, status.history


def _normal(result: tuple[Any, list[dict[str, Any]]]) -> Any:
    """Execution ids (the client draws them at random) by order of appearance; no times (the virtual
    clock ticks per read, and activity threads read it in any order)."""
    text = json.dumps(result)
    for n, eid in enumerate(
        dict.fromkeys(ev["OrchestrationInstance"]["ExecutionId"] for ev in result[1] if ev.get("OrchestrationInstance"))
    ):
        text = text.replace(eid, f"execution-{n}")
    # Entity request ids are uuid5s of the execution id: name them by order of appearance too.
    for n, rid in enumerate(
        dict.fromkeys(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
    ):
        text = text.replace(rid, f"request-{n}")
    return json.loads(re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text))


def test_cached_events_are_what_the_json_route_builds() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    objects, recorded, _ = cache.sync("i", history)
    assert _sdk_view(objects) == _sdk_view(_json_route(history))
    assert set(recorded) == {ev["EventId"] for ev in history if ev["EventType"] == EventType.TASK_SCHEDULED}


def test_played_flag_follows_the_replaced_event_without_decoding_again() -> None:
    _output, history = _run("hello_sequence", cache=True)
    unplayed = [{**ev, "IsPlayed": False} for ev in history]
    cache = ReplayCache()
    cache.sync("i", unplayed)
    objects, _, _ = cache.sync("i", history)
    assert cache.stats["decoded"] == len(history)  # the second sync decoded nothing
    assert [o.is_played for o in objects] == [ev["IsPlayed"] for ev in history]
    assert _sdk_view(objects) == _sdk_view(_json_route(history))


def test_a_history_that_is_not_an_extension_is_decoded_again() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    cache.sync("i", history)
    at = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.TASK_SCHEDULED)
    changed = [*history[:at], {**history[at], "Name": "another"}, *history[at + 1 :]]
    objects, recorded, _ = cache.sync("i", changed)
    assert _sdk_view(objects) == _sdk_view(_json_route(changed))
    assert recorded[history[at]["EventId"]]["Name"] == "another"
    shorter, _, _ = cache.sync("i", history[:2])
    assert len(shorter) == 2


def test_the_cache_is_bounded() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache(size=2)
    for iid in "abc":
        cache.sync(iid, history)
    before = cache.stats["decoded"]
    cache.sync("a", history)  # evicted: decoded again
    assert cache.stats["decoded"] == before + len(history)


def test_histories_with_and_without_the_cache_are_identical() -> None:
    cases: list[tuple[str, Any, tuple[str, ...]]] = [
        ("replay_values", "in", ("Go",)),  # new_uuid, current_utc_datetime, custom status, event, activity, timer
        ("activity_error_handled", "in", ()),
        ("entity_user", "e1", ()),  # entity calls, a signal, an entity failure caught
        ("counter_generations", {"n": 0, "limit": 2}, ()),  # continue-as-new: a new execution, same cache entry
    ]
    for name, input, events in cases:
        json_route = _normal(_run(name, False, events, input))
        assert _normal(_run(name, True, events, input)) == json_route, name
        assert _normal(_run(name, True, events, input, replay="incremental")) == json_route, name


def test_incremental_replay_resumes_and_replays_in_full_when_history_doubles_and_at_the_end() -> None:
    counts = {}
    for replay in ("full", "incremental"):
        with DurableHarness(chain_app, replay=replay) as harness:
            status = harness.run(harness.start("chain", 64))
            assert status.runtime_status == RuntimeStatus.COMPLETED and status.output == 64
            cache = harness.dispatcher.engine.replay_cache
            assert cache is not None
            counts[replay] = (cache.stats["full"], cache.stats["resumed"])
    assert counts["full"] == (65, 0)  # one episode per step and the start
    full, resumed = counts["incremental"]
    assert full + resumed == 65
    # History grows by 4 events per step (~260): full replays at the start, each doubling, and the end.
    assert 6 <= full <= 10


def test_a_lost_session_falls_back_to_full_replay() -> None:
    # A restart (empty cache) or a history reloaded from storage that is not what the session saw.
    with DurableHarness(chain_app, replay="incremental") as harness:
        cache = harness.dispatcher.engine.replay_cache
        assert cache is not None
        iid = harness.start("chain", 40)
        original = cache.sync

        def forgetful(instance_id: str, history: list[dict[str, Any]]) -> Any:
            if len(history) % 3 == 0:
                cache.drop(instance_id)
            return original(instance_id, history)

        cache.sync = forgetful  # type: ignore[method-assign]
        status = harness.run(iid)
        assert status.runtime_status == RuntimeStatus.COMPLETED and status.output == 40
        assert cache.stats["full"] > 10 and cache.stats["resumed"] > 10


def test_a_session_is_only_handed_out_for_a_strict_extension() -> None:
    from devhost.sdk_replay import Session

    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    cache.sync("i", history[:5])
    cache.keep("i", Session(executor=None, consumed=5))
    assert cache.sync("i", history[:5])[2] is None  # not longer: no session, and it is gone
    cache.keep("i", Session(executor=None, consumed=5))
    assert cache.sync("i", history[:7])[2] is not None
    cache.keep("i", Session(executor=None, consumed=7))
    changed = [*history[:3], {**history[3], "Name": "x"}, *history[4:]]
    assert cache.sync("i", changed)[2] is None
    cache.keep("i", Session(executor=None, consumed=6))  # not what the entry holds: refused
    assert cache.sync("i", [*changed, history[0]])[2] is None


def test_a_failure_is_replayed_in_full() -> None:
    with DurableHarness(chain_app, replay="incremental") as harness:
        harness.fake_activity("plus_one", lambda value: -100 if value == 20 else value + 1)
        status = harness.run(harness.start("chain", 30))
        assert status.runtime_status == RuntimeStatus.FAILED and "negative" in status.output
        cache = harness.dispatcher.engine.replay_cache
        assert cache is not None and cache.stats["resumed"] > 20


def test_a_resumed_session_states_what_the_sdk_would_serialise() -> None:
    # Session.state() serialises only new actions (and a timer cancelled since): it must equal the SDK's own
    # get_orchestrator_state_str() at every resumed episode, a timer cancelled inside a task_any included.
    from devhost.sdk_replay import Session

    compared: list[dict[str, Any]] = []
    original = Session.state

    def checked(self: Session) -> dict[str, Any]:
        state = original(self)
        assert state == json.loads(self.executor.get_orchestrator_state_str())
        compared.append(state)
        return state

    Session.state = checked  # type: ignore[method-assign]
    try:
        with DurableHarness(chain_app, replay="incremental") as harness:
            iid = harness.start("chain_then_race")
            harness.run(iid, auto_advance=False)
            harness.raise_event(iid, "First", "a")
            harness.run(iid, auto_advance=False)
            harness.raise_event(iid, "Second", "b")
            assert harness.run(iid).output == [20, "a", "b"]
    finally:
        Session.state = original  # type: ignore[method-assign]
    cancelled = [
        child
        for state in compared
        for action in state["actions"][0]
        for child in action.get("compoundActions") or []
        if child.get("isCanceled")
    ]
    assert cancelled, "no resumed episode saw the cancelled timer"
    assert any(state.get("customStatus") for state in compared)


def test_the_history_view_is_extended_and_rebuilt_when_history_is_not_an_extension() -> None:
    from devhost.sdk_replay import HistoryView

    class Counting(HistoryView):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def add(self, event: dict[str, Any]) -> None:
            self.seen.append(event["EventId"])

    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    first = cache.view("i", history[:6], Counting)
    assert first.seen == [ev["EventId"] for ev in history[:6]]
    played = [{**ev, "IsPlayed": True} for ev in history]
    again = cache.view("i", played, Counting)
    assert again is first and first.seen == [ev["EventId"] for ev in history]  # extended, the played flag ignored
    changed = [*played[:3], {**played[3], "EventId": 99}, *played[4:]]
    rebuilt = cache.view("i", changed, Counting)
    assert rebuilt is not first and rebuilt.seen == [ev["EventId"] for ev in changed]
    assert cache.view("i", changed[:4], Counting).seen == [ev["EventId"] for ev in changed[:4]]  # shorter: rebuilt
