"""Sub-orchestrations, continue-as-new, and values that must be stable across replays.

Tests internals (not devhost's public API): imports `devhost.history`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from devhost import DurableHarness, RuntimeStatus
from devhost.history import parse_ts

from .apps.feature_app import ATTEMPTS
from .sdk_support import episode_start_before, events, execution_id, kinds, new_harness, scheduled, sdk_uuid

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


@pytest.fixture
def harness() -> Iterator[DurableHarness]:
    yield from new_harness()


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    ATTEMPTS.pop(name, None)
    return name


# ---------------------------------------------------------------------- sub-orchestrators
def test_sub_orchestrator_with_explicit_instance_id(harness: DurableHarness) -> None:
    iid = harness.start(
        "parent_of", {"child": "child_double", "input": 21, "instance_id": "the-child"}, instance_id="the-parent"
    )
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"child": {"doubled": 42, "me": "the-child", "parent": "the-parent"}}
    (created,) = events(status, "SubOrchestrationInstanceCreated")
    assert created["EventId"] == 0 and created["Name"] == "child_double" and created["InstanceId"] == "the-child"
    (completed,) = events(status, "SubOrchestrationInstanceCompleted")
    assert completed["TaskScheduledId"] == 0

    child = harness.status("the-child")
    assert child.runtime_status == RuntimeStatus.COMPLETED
    assert child.input == 21
    assert child.output == {"doubled": 42, "me": "the-child", "parent": "the-parent"}
    parent_ref = events(child, "ExecutionStarted")[0]["ParentInstance"]
    assert parent_ref["OrchestrationInstance"]["InstanceId"] == "the-parent"
    assert parent_ref["TaskScheduleId"] == 0


def test_sub_orchestrator_with_generated_instance_id(harness: DurableHarness) -> None:
    iid = harness.start("parent_of", {"child": "child_double", "input": 5})
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    expected_child = f"{execution_id(status)}:0"  # "{parentExecutionId}:{sequence number}"
    assert status.output == {"child": {"doubled": 10, "me": expected_child, "parent": iid}}
    assert events(status, "SubOrchestrationInstanceCreated")[0]["InstanceId"] == expected_child
    assert harness.status(expected_child).runtime_status == RuntimeStatus.COMPLETED


def test_sub_orchestrator_with_retry_runs_a_new_child_per_attempt(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("parent_with_retry", {"key": key, "failures": 1, "max_attempts": 3})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    exec_id = execution_id(status)
    assert status.output == {"attempt": 2, "me": f"{exec_id}:2"}
    assert scheduled(status) == [
        (0, "SubOrchestrationInstanceCreated child_flaky"),
        (1, "TimerCreated"),
        (2, "SubOrchestrationInstanceCreated child_flaky"),
    ]
    first = harness.status(f"{exec_id}:0")
    assert first.runtime_status == RuntimeStatus.FAILED
    assert f"{key} attempt 1 failed" in first.output
    assert harness.status(f"{exec_id}:2").runtime_status == RuntimeStatus.COMPLETED


def test_sub_orchestrator_with_retry_reuses_an_explicit_child_id(harness: DurableHarness, key: str) -> None:
    spec = {"key": key, "failures": 2, "max_attempts": 3, "instance_id": "retried-child"}
    status = harness.run_to_completion("parent_with_retry", spec)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"attempt": 3, "me": "retried-child"}
    created = events(status, "SubOrchestrationInstanceCreated")
    assert [(ev["EventId"], ev["InstanceId"]) for ev in created] == [
        (0, "retried-child"),
        (2, "retried-child"),
        (4, "retried-child"),
    ]
    child = harness.status("retried-child")  # the last attempt's execution
    assert child.runtime_status == RuntimeStatus.COMPLETED
    assert child.output == {"attempt": 3, "me": "retried-child"}


def test_sub_orchestrator_with_retry_exhausted_fails_the_parent(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("parent_with_retry", {"key": key, "failures": 10, "max_attempts": 2})

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith(
        "Orchestrator function 'parent_with_retry' failed: Orchestrator function 'child_flaky' failed: "
    )
    assert f"{key} attempt 2 failed" in status.output
    assert ATTEMPTS[key] == 2


def test_failing_child_raises_in_the_parent(harness: DurableHarness) -> None:
    status = harness.run_to_completion("parent_of", {"child": "child_fails", "input": "the plan", "catch": True})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["error"].startswith("Orchestrator function 'child_fails' failed: child gave up on the plan")
    (failed,) = events(status, "SubOrchestrationInstanceFailed")
    assert failed["TaskScheduledId"] == 0
    assert failed["Reason"] == "Orchestrator function 'child_fails' failed: child gave up on the plan"


def test_failing_child_unhandled_fails_the_parent(harness: DurableHarness) -> None:
    status = harness.run_to_completion("parent_of", {"child": "child_fails", "input": "x"})

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith(
        "Orchestrator function 'parent_of' failed: Orchestrator function 'child_fails' failed: child gave up on x"
    )


def test_unknown_sub_orchestrator_fails_the_parent(harness: DurableHarness) -> None:
    status = harness.run_to_completion("parent_of", {"child": "no_such_orchestrator", "catch": True})

    assert status.runtime_status == RuntimeStatus.FAILED
    assert "no_such_orchestrator" in status.output


# --------------------------------------------------------------------------- continue_as_new
def test_continue_as_new_runs_generations_and_keeps_only_the_last_history(harness: DurableHarness) -> None:
    iid = harness.start("counter_generations", {"n": 0, "limit": 4})
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"n": 4, "last": "Hello generation 4"}
    assert status.input == {"n": 4, "limit": 4, "last": "Hello generation 3"}
    # Only the last execution's history: one start, one activity, numbered from 0 again.
    assert kinds(status) == ["ExecutionStarted", "TaskScheduled", "TaskCompleted", "ExecutionCompleted"]
    assert scheduled(status) == [(0, "TaskScheduled say_hello")]
    assert events(status, "TaskScheduled")[0]["Input"] == '"generation 4"'
    assert events(status, "ExecutionStarted")[0]["OrchestrationInstance"]["InstanceId"] == iid


def test_event_raised_while_busy_is_not_carried_into_the_next_execution(harness: DurableHarness) -> None:
    # DTFx carries into the next execution only the EventRaised events it processes after the orchestrator
    # called ContinueAsNew (TaskOrchestrationContext.cs 414-424, TaskOrchestrationDispatcher.cs 452-455);
    # the extension's shim calls ContinueAsNew(input) without preserving unprocessed events. An event that
    # arrived while generation 0 was still busy is lost, as on Azure.
    iid = harness.start("busy_then_wait", {"gen": 0})
    busy = harness.run(iid, auto_advance=False)
    assert busy.runtime_status == RuntimeStatus.RUNNING
    first_execution = execution_id(busy)

    harness.raise_event(iid, "Go", "sent during generation 0")
    still_busy = harness.run(iid, auto_advance=False)
    assert still_busy.runtime_status == RuntimeStatus.RUNNING
    assert execution_id(still_busy) == first_execution
    assert len(events(still_busy, "EventRaised")) == 1  # delivered, but nobody waits for it yet

    generation_1 = harness.run(iid)  # the timer fires, generation 0 continues as new
    assert generation_1.runtime_status == RuntimeStatus.RUNNING
    assert execution_id(generation_1) != first_execution
    assert events(generation_1, "EventRaised") == []

    harness.raise_event(iid, "Go", "sent to generation 1")
    status = harness.run(iid)
    assert status.output == {"gen": 1, "value": "sent to generation 1"}


def test_events_queued_before_start_spread_over_generations(harness: DurableHarness) -> None:
    iid = harness.start("collect_items", {"items": [], "limit": 3})
    for item in ("first", "second", "third"):
        harness.raise_event(iid, "Item", item)
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["first", "second", "third"]


def test_continue_as_new_one_event_per_generation(harness: DurableHarness) -> None:
    iid = harness.start("collect_items", {"items": [], "limit": 3})
    for item in ("a", "b", "c"):
        assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING
        harness.raise_event(iid, "Item", item)
    status = harness.run(iid)
    assert status.output == ["a", "b", "c"]
    assert status.input == {"items": ["a", "b"], "limit": 3}


# ------------------------------------------------------------- replay-stable values
def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_new_uuid_and_current_time_are_stable_across_replays(harness: DurableHarness) -> None:
    iid = harness.start("replay_values")
    first = harness.run(iid)
    assert first.runtime_status == RuntimeStatus.RUNNING
    recorded = first.custom_status
    started = _ts(recorded["started"])
    # The SDK's formula (docs/durable-protocol.md §1.5) with the first episode's time and counters 0, 1.
    assert recorded["uuids"] == [sdk_uuid(iid, started, 0), sdk_uuid(iid, started, 1)]
    assert started == parse_ts(events(first, "OrchestratorStarted")[0]["Timestamp"])

    harness.raise_event(iid, "Go")
    status = harness.run(iid)  # three more episodes, each replaying the first
    assert status.runtime_status == RuntimeStatus.COMPLETED
    out = status.output
    assert out["uuids"] == recorded["uuids"]
    assert out["started"] == recorded["started"]
    assert len(set(out["uuids"] + [out["late_uuid"]])) == 3

    # current_utc_datetime after each yield is the start of the episode that resumed it.
    (raised,) = events(status, "EventRaised")
    (completed,) = events(status, "TaskCompleted")
    (fired,) = events(status, "TimerFired")
    after_event = _ts(out["after_event"])
    after_activity = _ts(out["after_activity"])
    assert after_event == episode_start_before(status, raised)
    assert after_activity == episode_start_before(status, completed)
    assert _ts(out["after_timer"]) == episode_start_before(status, fired)
    assert started < after_event < after_activity < _ts(out["after_timer"])
    assert out["late_uuid"] == sdk_uuid(iid, after_activity, 2)


def test_sub_orchestrators_fan_out_with_generated_ids(harness: DurableHarness) -> None:
    status = harness.run_to_completion("sub_fan_out", [1, 2, 3])

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == [2, 4, 6]
    exec_id = execution_id(status)
    created = events(status, "SubOrchestrationInstanceCreated")
    assert [(ev["EventId"], ev["InstanceId"]) for ev in created] == [(i, f"{exec_id}:{i}") for i in range(3)]
    for i, value in enumerate([1, 2, 3]):
        child = harness.status(f"{exec_id}:{i}")
        assert child.runtime_status == RuntimeStatus.COMPLETED
        assert child.input == value
