"""Instance lifecycle: orchestrator failures, suspend/resume, terminate, nondeterminism."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from devhost import DurableHarness, Gone, RuntimeStatus

from .apps import feature_app
from .sdk_support import events, kinds, new_harness

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


@pytest.fixture
def harness() -> Iterator[DurableHarness]:
    yield from new_harness()


# -------------------------------------------------------------------- orchestrator raises
def test_orchestrator_exception_fails_the_instance(harness: DurableHarness) -> None:
    status = harness.run_to_completion("boom", "bad data")

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output == "Orchestrator function 'boom' failed: kaboom: bad data"
    assert kinds(status) == ["ExecutionStarted", "TaskScheduled", "TaskCompleted", "ExecutionCompleted"]
    (completed,) = events(status, "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == 3
    assert completed["Result"] == status.output
    assert "ValueError" in (completed.get("Details") or "")


# ------------------------------------------------------------------------ suspend / resume
def test_suspend_holds_the_work_of_events_until_resume(harness: DurableHarness) -> None:
    """A13 as Azure does it: an event arriving while suspended goes into history and the code runs past its
    wait (custom status updates: TaskOrchestrationShim.cs 139-150), but the orchestration schedules and ends
    nothing until resumed (TaskOrchestrationExecutor.cs 199-204, TaskOrchestrationContext.cs 563-606)."""
    iid = harness.start("status_waiter")
    assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING

    harness.suspend(iid, "maintenance")
    suspended = harness.run(iid)
    assert suspended.runtime_status == RuntimeStatus.SUSPENDED

    harness.raise_event(iid, "Go", "sent while suspended")
    still = harness.run(iid)
    assert still.runtime_status == RuntimeStatus.SUSPENDED
    assert still.custom_status == {"stage": "done", "value": "sent while suspended"}
    assert len(events(still, "EventRaised")) == 1 and still.output == "maintenance"

    harness.resume(iid, "maintenance over")
    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == "sent while suspended"
    assert kinds(status, framing=True)[-10:] == [
        "OrchestratorStarted",
        "ExecutionSuspended",
        "OrchestratorCompleted",
        "OrchestratorStarted",
        "EventRaised",
        "OrchestratorCompleted",
        "OrchestratorStarted",
        "ExecutionResumed",
        "ExecutionCompleted",
        "OrchestratorCompleted",
    ]


def test_resume_with_nothing_held_is_recorded_and_the_instance_carries_on(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    harness.run(iid)
    harness.suspend(iid)
    harness.run(iid)
    harness.resume(iid)
    resumed = harness.run(iid)
    assert resumed.runtime_status == RuntimeStatus.RUNNING
    assert kinds(resumed)[-2:] == ["ExecutionSuspended", "ExecutionResumed"]

    harness.raise_event(iid, "Go", "after resume")
    assert harness.run(iid).output == "after resume"


def test_terminate_a_suspended_instance(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    harness.run(iid)
    harness.suspend(iid)
    harness.raise_event(iid, "Go", "never applied")
    harness.terminate(iid, "cancelled while suspended")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.TERMINATED
    assert status.output == "cancelled while suspended"
    # In history, as on Azure (A13), but never acted on: terminate overrides the suspension.
    assert len(events(status, "EventRaised")) == 1


def test_suspended_timer_waits_for_resume(harness: DurableHarness) -> None:
    iid = harness.start("sleeper", 1)
    harness.run(iid, auto_advance=False)
    harness.suspend(iid)
    harness.run(iid, auto_advance=False)
    harness.advance(timedelta(hours=2))
    assert harness.status(iid).runtime_status == RuntimeStatus.SUSPENDED

    harness.resume(iid)
    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert [ev["TimerId"] for ev in events(status, "TimerFired")] == [0]


# ------------------------------------------------------------------------------- terminate
def test_terminate_ends_the_instance_with_the_reason(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    harness.run(iid)
    harness.terminate(iid, "operator said stop")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.TERMINATED
    assert status.output == "operator said stop"
    assert kinds(status)[-2:] == ["ExecutionTerminated", "ExecutionCompleted"]
    with pytest.raises(Gone):
        harness.raise_event(iid, "Go", "too late")


def test_terminated_child_fails_its_parent(harness: DurableHarness) -> None:
    iid = harness.start("parent_of", {"child": "child_waits", "instance_id": "doomed-child", "catch": True})
    assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING
    assert harness.status("doomed-child").runtime_status == RuntimeStatus.RUNNING

    harness.terminate("doomed-child", "no longer needed")
    status = harness.run(iid)

    assert harness.status("doomed-child").runtime_status == RuntimeStatus.TERMINATED
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert "no longer needed" in status.output["error"]
    (failed,) = events(status, "SubOrchestrationInstanceFailed")
    assert failed["TaskScheduledId"] == 0


# --------------------------------------------------------------------------- nondeterminism
@pytest.mark.devhost_replay("full")
def test_changed_orchestrator_code_is_reported_as_nondeterministic(
    harness: DurableHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = harness.start("drifting")
    waiting = harness.run(iid)
    assert waiting.runtime_status == RuntimeStatus.RUNNING
    assert events(waiting, "TaskScheduled")[0]["Name"] == "step_a"

    # "Deploy" a new version while the instance waits: it now calls step_b first.
    monkeypatch.setitem(feature_app.DRIFT, "activity", "step_b")
    harness.raise_event(iid, "Go")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith("Orchestrator function 'drifting' failed: Non-Deterministic workflow detected")
    assert "sequence number 0" in status.output
    assert "TaskScheduled 'step_a'" in status.output
    assert "'step_b'" in status.output
    # Nothing from the new code was scheduled.
    assert [ev["Name"] for ev in events(status, "TaskScheduled")] == ["step_a"]


@pytest.mark.devhost_replay("incremental")
def test_incremental_replay_reports_changed_code_when_the_instance_completes(
    harness: DurableHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Incremental replay keeps the running generator, so code changed without a restart is seen by
    # the full replay it runs at the end (devhost.sdk_replay.Session), not at the next episode.
    iid = harness.start("drifting")
    harness.run(iid)
    monkeypatch.setitem(feature_app.DRIFT, "activity", "step_b")
    harness.raise_event(iid, "Go")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith("Orchestrator function 'drifting' failed: Non-Deterministic workflow detected")
    assert "TaskScheduled 'step_a'" in status.output and "'step_b'" in status.output
    assert [ev["Name"] for ev in events(status, "TaskScheduled")] == ["step_a", "say_hello"]


def test_unchanged_code_replays_cleanly(harness: DurableHarness) -> None:
    iid = harness.start("drifting")
    harness.run(iid)
    harness.raise_event(iid, "Go")
    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["a", "Hello after"]


@pytest.mark.parametrize("variant", [None, "stop after the wait"])
def test_dropping_a_recorded_activity_is_reported_as_nondeterministic(
    harness: DurableHarness, monkeypatch: pytest.MonkeyPatch, variant: str | None
) -> None:
    # With "stop after the wait" the new version schedules nothing after the wait either, so
    # only the recorded-but-never-replayed TaskScheduled #0 betrays the change.
    iid = harness.start("drifting", variant)
    harness.run(iid)

    # The new version no longer calls step_a at all: its wait now sits where step_a was.
    monkeypatch.setitem(feature_app.DRIFT, "activity", None)
    harness.raise_event(iid, "Go")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.FAILED
    assert "Non-Deterministic workflow detected" in status.output
    assert "sequence number 0" in status.output
    assert "TaskScheduled 'step_a'" in status.output
