"""The replay checker: record real runs with the harness, replay them against (changed) code.

Recordings come from `DurableHarness` running the real SDK (tests/apps/replay_app.py), in both
formats the checker reads: the full-fidelity export and the HTTP API's `historyEvents`.

Tests internals too (not devhost's public API): builds histories by hand with `devhost.history` and renders
the HTTP view with `devhost.history_view`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost import (
    DurableHarness,
    NondeterminismError,
    RuntimeStatus,
    assert_replays,
    export_instance,
    load_recording,
    replay_history,
)
from devhost import history as h
from devhost.history_view import EXPORT_KEYS, to_http_history
from tests import PROJECT_ROOT as REPO
from tests import import_file
from tests.apps import replay_app

CITIES = {"cities": ["Tokyo", "Seattle", "London"]}


# ------------------------------------------------------------------ recording helpers
def record(
    app: Any, name: str, input: Any = None, drive: Callable[[DurableHarness, str], object] | None = None
) -> dict[str, Any]:
    """Run `name` to its end (or as far as `drive` takes it) and return the full export."""
    with DurableHarness(app) as harness:
        iid = harness.start(name, input)
        if drive is None:
            harness.run(iid)
        else:
            drive(harness, iid)
        return export_instance(harness.status(iid))


def approve_after_fan_out(harness: DurableHarness, iid: str) -> None:
    harness.run(iid, auto_advance=False)  # fan-out done, timer and event wait pending
    harness.raise_event(iid, "Approve", {"ok": True})
    harness.run(iid)


def http_view(export: dict[str, Any]) -> list[dict[str, Any]]:
    return to_http_history(export["history"], show_input=True, show_output=True)


def episodes_in(export: dict[str, Any]) -> int:
    return sum(1 for ev in export["history"] if ev["EventType"] == h.EventType.ORCHESTRATOR_STARTED)


@pytest.fixture(autouse=True)
def fresh_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the module's default code paths and its own flaky-call log."""
    monkeypatch.setattr(replay_app, "GREETING_ACTIVITY", "say_hello")
    monkeypatch.setattr(replay_app, "FAN_OUT_LIMIT", None)
    monkeypatch.setattr(replay_app, "EVENT_NAME", "Go")
    monkeypatch.setattr(replay_app, "FLAKY_CALLS", [])


@pytest.fixture
def fan_out() -> dict[str, Any]:
    """Fan-out of three activities, a timer raced by an external event, a plain timer, a fan-in activity."""
    export = record(replay_app.app, "fan_out_flow", CITIES, approve_after_fan_out)
    assert export["history"][-2]["EventType"] == h.EventType.EXECUTION_COMPLETED
    return export


@pytest.fixture
def parent() -> dict[str, Any]:
    """A sub-orchestration, an activity retried once, an entity signal and an entity call."""
    return record(replay_app.app, "parent_flow", None)


# ------------------------------------------------------------------ same code: ok
def test_full_export_replays_against_same_code(fan_out: dict[str, Any]) -> None:
    report = assert_replays(replay_app.app, fan_out)
    assert report.ok and report.divergence is None
    assert report.format == "full"
    assert report.episodes == episodes_in(fan_out) == 5
    assert report.summary() == "OK: replayed 5 episodes"


def test_http_history_replays_against_same_code(fan_out: dict[str, Any]) -> None:
    events = http_view(fan_out)
    report = assert_replays(replay_app.app, events)
    assert report.format == "http"
    # ExecutionStarted, 3 completions, EventRaised, TimerFired, the last completion: one episode each.
    assert report.episodes == 7
    assert report.notes == []


def test_http_status_payload_replays(fan_out: dict[str, Any]) -> None:
    payload = {
        "name": "fan_out_flow",
        "instanceId": fan_out["instanceId"],
        "runtimeStatus": "Completed",
        "input": json.loads(fan_out["input"]),
        "output": None,
        "historyEvents": http_view(fan_out),
    }
    assert assert_replays(replay_app.app, payload).episodes == 7

    # Without showInput the external event's payload is unknown: the replay says so and diverges.
    payload["historyEvents"] = to_http_history(fan_out["history"], show_input=False, show_output=True)
    report = replay_history(replay_app.app, payload)
    assert any("showInput=false" in note for note in report.notes)
    assert report.divergence is not None and '"decision": null' in report.divergence


def test_http_input_comes_from_the_status_payload_when_history_has_none() -> None:
    export = record(replay_app.app, "countdown", 0)
    events = to_http_history(export["history"], show_input=False, show_output=True)
    payload = {"name": "countdown", "input": json.loads(export["input"]), "historyEvents": events}
    assert assert_replays(replay_app.app, payload).ok
    # Neither the history nor the payload has the input: the orchestrator gets None and fails.
    del payload["input"]
    report = replay_history(replay_app.app, payload)
    assert report.divergence is not None
    assert "the current code failed the orchestration" in report.divergence


def test_sub_orchestration_retry_and_entities_replay(parent: dict[str, Any]) -> None:
    assert json.loads(parent["history"][-2]["Result"]) == {
        "child": ["Hello Tokyo", "HELLO TOKYO"],
        "flaky": "ok x",
        "total": 5,
    }
    calls = len(replay_app.FLAKY_CALLS)
    assert assert_replays(replay_app.app, parent).episodes == episodes_in(parent)
    assert assert_replays(replay_app.app, http_view(parent)).ok
    assert len(replay_app.FLAKY_CALLS) == calls, "activities must not run during a replay"


def test_entity_request_ids_from_another_host_are_mapped(parent: dict[str, Any]) -> None:
    """Azure uses random request ids for entity calls; the replay maps them onto its own by sequence number."""
    text = json.dumps(parent)
    for ev in parent["history"]:
        if ev["EventType"] == h.EventType.EVENT_SENT:
            old = json.loads(ev["Input"])["id"]
            text = text.replace(old, str(uuid.uuid4()))
    foreign = json.loads(text)
    assert foreign != parent
    assert assert_replays(replay_app.app, foreign).ok


def test_suspend_resume_and_external_event_replay() -> None:
    def drive(harness: DurableHarness, iid: str) -> None:
        harness.run(iid)
        harness.suspend(iid, "pause")
        harness.run(iid)
        harness.raise_event(iid, "Go", 7)  # into history while suspended; acted on after the resume (A13)
        harness.run(iid)
        harness.resume(iid, "go on")
        harness.run(iid)

    export = record(replay_app.app, "waits_for_event", None, drive)
    assert json.loads(export["history"][-2]["Result"]) == 7
    assert assert_replays(replay_app.app, export).ok
    events = http_view(export)
    assert [ev["EventType"] for ev in events][1:4] == ["ExecutionSuspended", "EventRaised", "ExecutionResumed"]
    assert assert_replays(replay_app.app, events).ok
    # Older devhost engines applied the held event after the resume: still the same run.
    events[2], events[3] = events[3], events[2]
    assert assert_replays(replay_app.app, events).ok

    # A recording that ends while suspended, with the event in history (as Azure records it): the code
    # schedules nothing for it yet, so there is nothing the recording lacks.
    def suspend_then_raise(harness: DurableHarness, iid: str) -> None:
        harness.run(iid)
        harness.suspend(iid, "pause")
        harness.run(iid)
        harness.raise_event(iid, "Go", 7)
        harness.run(iid)

    still = record(replay_app.app, "waits_for_event", None, suspend_then_raise)
    assert h.EventType.EVENT_RAISED in [ev["EventType"] for ev in still["history"]]
    assert assert_replays(replay_app.app, still).ok
    assert assert_replays(replay_app.app, http_view(still)).ok

    # Older engines applied the held event in the resume's episode and did not record ExecutionResumed:
    # the episode that ran implies it.
    hist = export["history"]
    raised_at = next(i for i, ev in enumerate(hist) if ev["EventType"] == h.EventType.EVENT_RAISED)
    old = [ev for i, ev in enumerate(hist) if not raised_at - 1 <= i <= raised_at + 1]  # drop its episode
    old = [hist[raised_at] if ev["EventType"] == h.EventType.EXECUTION_RESUMED else ev for ev in old]
    assert assert_replays(replay_app.app, dict(export, history=old)).ok


def test_terminated_and_still_running_recordings_replay() -> None:
    def terminate(harness: DurableHarness, iid: str) -> None:
        harness.run(iid)
        harness.terminate(iid, "stop")
        harness.run(iid)

    terminated = record(replay_app.app, "waits_for_event", None, terminate)
    assert terminated["history"][-2]["OrchestrationStatus"] == 5
    assert assert_replays(replay_app.app, terminated).ok
    assert assert_replays(
        replay_app.app, to_http_history(terminated["history"], show_input=False, show_output=False)
    ).ok

    running = record(replay_app.app, "fan_out_flow", CITIES, lambda hs, iid: hs.run(iid, auto_advance=False))
    assert all(ev["EventType"] != h.EventType.EXECUTION_COMPLETED for ev in running["history"])
    assert assert_replays(replay_app.app, running).episodes == 2
    assert assert_replays(replay_app.app, http_view(running)).ok


def test_export_from_store_instance_equals_status_export(fan_out: dict[str, Any]) -> None:
    with DurableHarness(replay_app.app) as harness:
        iid = harness.start("hello_sequence", None, "fixed-id")
        harness.run(iid)
        stored = asyncio.run(harness.store.load(iid))
        assert stored is not None
        from_store = export_instance(stored)
        from_status = export_instance(harness.status(iid))
    assert tuple(from_store) == EXPORT_KEYS
    assert from_store == from_status
    assert from_store["instanceId"] == "fixed-id" and from_store["name"] == "hello_sequence"
    assert from_store["executionId"] == stored.execution_id
    assert from_store["history"] == stored.history and from_store["history"] is not stored.history
    assert assert_replays(replay_app.app, json.dumps(from_store)).ok


# ------------------------------------------------------------------ continue-as-new
def countdown_recording() -> list[dict[str, Any]]:
    """Two executions of `countdown` as another DTFx tool might export them: EventType names, no IsPlayed."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=1, seconds=2)
    events = [
        h.orchestrator_started(t0),
        h.execution_started(t0, instance_id="cd", execution_id="a" * 32, name="countdown", input_text='"1"'),
        h.timer_created(t0, 0, t0 + timedelta(minutes=1)),
        h.orchestrator_completed(t0),
        h.orchestrator_started(t1),
        h.timer_fired(t1, 0, t0 + timedelta(minutes=1)),
        h.continue_as_new(t1, 1, "0"),
        h.orchestrator_completed(t1),
        h.orchestrator_started(t1),
        h.execution_started(t1, instance_id="cd", execution_id="b" * 32, name="countdown", input_text='"0"'),
        h.execution_completed(t1, 0, RuntimeStatus.COMPLETED, '"done"'),
        h.orchestrator_completed(t1),
    ]
    for ev in events:
        ev["EventType"] = h.EVENT_NAMES[ev["EventType"]]
        del ev["IsPlayed"]
    return events


def test_continue_as_new_across_executions() -> None:
    events = countdown_recording()
    assert assert_replays(replay_app.app, events).episodes == 3

    events[6]["Result"] = "5"  # the recorded ContinueAsNew carried another input
    with pytest.raises(NondeterminismError) as err:
        assert_replays(replay_app.app, events)
    assert str(err.value) == (
        "episode 2: the recording continued as new with input 5, but the current code continued as new with input 0"
    )


def test_last_execution_of_continue_as_new_recorded_by_harness() -> None:
    export = record(replay_app.app, "countdown", 2)
    assert json.loads(export["history"][1]["Input"]) == "0"
    assert assert_replays(replay_app.app, export).ok


# ------------------------------------------------------------------ changed code: divergence
def test_changed_activity_name_full(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = record(replay_app.app, "hello_sequence")
    monkeypatch.setattr(replay_app, "GREETING_ACTIVITY", "say_goodbye")
    with pytest.raises(NondeterminismError) as err:
        assert_replays(replay_app.app, recorded)
    assert str(err.value) == (
        "episode 1, sequence number 0: the recording scheduled activity 'say_hello', "
        "but the current code scheduled activity 'say_goodbye'"
    )
    assert isinstance(err.value, AssertionError)
    report = err.value.report
    assert not report.ok and report.episodes == 1


def test_changed_activity_name_http(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = http_view(record(replay_app.app, "hello_sequence"))
    monkeypatch.setattr(replay_app, "GREETING_ACTIVITY", "say_goodbye")
    report = replay_history(replay_app.app, recorded)
    assert not report.ok
    assert report.divergence == (
        "episode 2: the recording completed activity 'say_hello' with input \"Tokyo\", but the current code never "
        "scheduled it (its pending activity calls: 'say_goodbye' with input \"Tokyo\" (sequence number 0))"
    )


def test_second_app_registering_the_same_orchestrator_name() -> None:
    recorded = record(replay_app.app, "hello_sequence")
    report = replay_history(replay_app.app_v2, recorded)
    assert report.divergence == (
        "episode 1, sequence number 0: the recording scheduled activity 'say_hello', "
        "but the current code scheduled activity 'say_goodbye'"
    )
    # ...and the other way round: v2's recording against v1's code.
    report = replay_history(replay_app.app, record(replay_app.app_v2, "hello_sequence"))
    assert report.divergence is not None
    assert "sequence number 0" in report.divergence and "'say_goodbye'" in report.divergence


def test_narrower_fan_out_diverges(fan_out: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_app, "FAN_OUT_LIMIT", 2)
    full = replay_history(replay_app.app, fan_out)
    assert full.divergence == (
        "episode 1, sequence number 2: the recording scheduled activity 'say_hello', "
        "but the current code did nothing more in that episode"
    )
    http = replay_history(replay_app.app, http_view(fan_out))
    assert http.divergence is not None
    assert http.divergence.startswith("episode 4: the recording completed activity 'say_hello' with input \"London\"")


def test_wider_fan_out_diverges(fan_out: dict[str, Any]) -> None:
    wider = record(
        replay_app.app, "fan_out_flow", {"cities": ["Tokyo", "Seattle", "London", "Paris"]}, approve_after_fan_out
    )
    shrunk = dict(wider, input=fan_out["input"])
    shrunk["history"] = [dict(ev) for ev in wider["history"]]
    shrunk["history"][1]["Input"] = fan_out["input"]  # same recording, but the code now sees three cities
    report = replay_history(replay_app.app, shrunk)
    assert report.divergence is not None
    assert report.divergence.startswith("episode 1, sequence number 3: the recording scheduled activity 'say_hello'")


def test_result_changes_are_reported_at_the_end(fan_out: dict[str, Any]) -> None:
    changed = json.loads(json.dumps(fan_out))
    for ev in changed["history"]:
        if ev["EventType"] == h.EventType.EVENT_RAISED:
            ev["Input"] = json.dumps({"ok": False})
    # The recording's final output says {"ok": true}; replaying with the altered event must notice.
    report = replay_history(replay_app.app, changed)
    assert report.divergence is not None
    assert report.divergence.startswith("episode 5: the recording completed the orchestration with output")
    assert '"decision": {"ok": false}' in report.divergence


def test_renamed_event_wait_explains_the_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    def drive(harness: DurableHarness, iid: str) -> None:
        harness.run(iid)
        harness.raise_event(iid, "Go", 7)
        harness.run(iid)

    recorded = record(replay_app.app, "waits_for_event", None, drive)
    monkeypatch.setattr(replay_app, "EVENT_NAME", "Proceed")
    full = replay_history(replay_app.app, recorded)
    assert full.divergence == (
        "episode 2: the recording completed the orchestration with output 7, but the current code did nothing "
        "more in that episode (note: the recording raised external event 'Go', which the current code never "
        "waited for; it waits for 'Proceed')"
    )
    http = replay_history(replay_app.app, http_view(recorded))
    assert http.divergence is not None
    assert "it waits for 'Proceed'" in http.divergence
    assert "pending: external event 'Proceed'" in http.divergence


def test_code_that_fails_where_the_recording_went_on(fan_out: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_app, "FAN_OUT_LIMIT", "not a number")
    report = replay_history(replay_app.app, fan_out)
    assert report.divergence is not None
    assert report.divergence.startswith(
        "episode 1, sequence number 0: the recording scheduled activity 'say_hello', "
        "but the current code failed the orchestration: Orchestrator function "
        "'fan_out_flow' failed:"
    )


def test_http_recording_without_outputs_is_flagged(fan_out: dict[str, Any]) -> None:
    events = to_http_history(fan_out["history"], show_input=True, show_output=False)
    report = replay_history(replay_app.app, events)
    assert any("showHistoryOutput=false" in note for note in report.notes)
    # The activities return None in the replay, so the fan-in differs: `" / ".join([None, ...])` fails.
    assert not report.ok


def test_timer_fired_with_nothing_pending_diverges(fan_out: dict[str, Any]) -> None:
    events = http_view(fan_out)
    fired = next(i for i, ev in enumerate(events) if ev["EventType"] == "TimerFired")
    events.insert(2, dict(events[fired]))  # a timer firing before any timer exists
    report = replay_history(replay_app.app, events)
    assert report.divergence is not None
    assert report.divergence.startswith("episode 3: the recording fired a timer")
    assert report.divergence.endswith("but the current code has no timer pending")


# ------------------------------------------------------------------ recordings
def test_http_replay_runs_episodes_at_their_recorded_start_times() -> None:
    """The HTTP view has no OrchestratorStarted; the checker recovers episode times from what they wrote."""
    export = record(replay_app.app, "clock_reader")
    payload = {"instanceId": export["instanceId"], "historyEvents": http_view(export)}
    assert assert_replays(replay_app.app, payload).ok
    # new_uuid() hashes the instance id too, which a bare historyEvents list lacks: flagged, not silent.
    report = replay_history(replay_app.app, payload["historyEvents"])
    assert report.divergence is not None and report.divergence.startswith("episode 3: the recording completed")
    assert any("needs the instance id" in note for note in report.notes)


def test_time_read_in_an_episode_that_writes_nothing_needs_the_full_export() -> None:
    """A known limit of the HTTP format, reported with its reason rather than as a bare mismatch."""
    with DurableHarness(replay_app.app) as harness:
        iid = harness.start("stamped_wait", None)
        harness.run(iid)
        harness.clock.advance(timedelta(minutes=5))
        harness.raise_event(iid, "Go", 1)
        harness.run(iid)
        export = export_instance(harness.status(iid))
    assert assert_replays(replay_app.app, export).ok
    report = replay_history(replay_app.app, {"instanceId": export["instanceId"], "historyEvents": http_view(export)})
    assert report.divergence is not None and "the recording completed the orchestration" in report.divergence
    assert any("no start time for episodes that scheduled nothing" in note for note in report.notes)


def test_load_recording_formats(fan_out: dict[str, Any], tmp_path: Path) -> None:
    assert load_recording(fan_out).format == "full"
    assert load_recording(fan_out["history"]).format == "full"
    assert load_recording(http_view(fan_out)).format == "http"
    assert load_recording({"historyEvents": http_view(fan_out)}).format == "http"
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(fan_out))
    assert load_recording(path).instance_id == fan_out["instanceId"]
    assert load_recording(str(path)).format == "full"
    assert load_recording(json.dumps(http_view(fan_out))).format == "http"
    with pytest.raises(ValueError, match="showHistory=true"):
        load_recording({"name": "x", "historyEvents": None})
    with pytest.raises(ValueError, match="unknown EventType"):
        load_recording([{"EventType": "Nope", "Timestamp": "2026-01-01T00:00:00Z"}])
    with pytest.raises(ValueError):
        load_recording({"something": "else"})


# ------------------------------------------------------------------ CLI
FUNCTION_APP = """
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def greet(context):
    greeting = yield context.call_activity("{activity}", "Tokyo")
    return greeting


@app.activity_trigger(input_name="name")
def say_hello(name):
    return "Hello " + name


@app.activity_trigger(input_name="name")
def say_goodbye(name):
    return "Goodbye " + name
"""


def write_app(directory: Path, activity: str) -> Path:
    path = directory / "function_app.py"
    path.write_text(textwrap.dedent(FUNCTION_APP).replace("{activity}", activity))
    return path


def import_app(path: Path) -> Any:
    return import_file(path, f"replay_cli_app_{uuid.uuid4().hex}").app


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow  # ten `devhost replay` processes
def test_cli_replay(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    export = record(import_app(write_app(app_dir, "say_hello")), "greet")
    full = tmp_path / "greet.json"
    full.write_text(json.dumps(export, indent=2))
    http = tmp_path / "greet-http.json"
    http.write_text(json.dumps({"instanceId": export["instanceId"], "historyEvents": http_view(export)}))

    ok = run_cli("replay", str(full), cwd=app_dir)
    assert (ok.returncode, ok.stdout) == (0, "OK: replayed 2 episodes\n"), ok.stderr
    ok_http = run_cli("replay", str(http), cwd=app_dir)
    assert (ok_http.returncode, ok_http.stdout) == (0, "OK: replayed 2 episodes\n"), ok_http.stderr

    write_app(app_dir, "say_goodbye")  # the code changed after the recording
    bad = run_cli("replay", str(full), cwd=app_dir)
    assert bad.returncode == 1, bad.stderr
    assert bad.stdout == (
        "DIVERGENCE: episode 1, sequence number 0: the recording scheduled activity 'say_hello', "
        "but the current code scheduled activity 'say_goodbye'\n"
    )

    # From elsewhere, naming the script root and the app attribute explicitly.
    other = run_cli("replay", str(full), "--script-root", str(app_dir), "--app", "function_app:app", cwd=tmp_path)
    assert other.returncode == 1 and "'say_goodbye'" in other.stdout

    missing = run_cli("replay", str(tmp_path / "nope.json"), cwd=app_dir)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "junk.json").write_text("{not json")
    junk = run_cli("replay", str(tmp_path / "junk.json"), cwd=app_dir)
    assert junk.returncode == 2 and "error:" in junk.stderr
    no_app = run_cli("replay", str(full), "--app", "no_such_module_here", cwd=app_dir)
    assert no_app.returncode == 2 and "cannot import 'no_such_module_here'" in no_app.stderr
    no_attr = run_cli("replay", str(full), "--app", "function_app:application", cwd=app_dir)
    assert no_attr.returncode == 2 and "has no attribute 'application'" in no_attr.stderr
    usage = run_cli(cwd=tmp_path)
    assert usage.returncode == 2 and "replay" in usage.stderr
