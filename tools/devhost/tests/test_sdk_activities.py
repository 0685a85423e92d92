"""Activities through the engine: call_activity, failures, retries, task_all / task_any.

Each test runs a real orchestrator from apps/feature_app.py on the real SDK through
DurableHarness (memory hub, virtual time) and checks what a user would look at:
runtime status, output, and the history events the Durable extension would record.

Tests internals (not devhost's public API): imports `devhost.history`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from devhost import DurableHarness, RuntimeStatus
from devhost.history import parse_ts

from .apps.feature_app import ATTEMPTS, RETRY_INTERVAL_MS
from .sdk_support import episode_start_before, events, kinds, new_harness, scheduled

RETRY_DELAY = timedelta(milliseconds=RETRY_INTERVAL_MS)

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


@pytest.fixture
def harness() -> Iterator[DurableHarness]:
    yield from new_harness()


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A flaky-activity key unique to this test, so attempt counts never leak between tests."""
    name = request.node.name
    ATTEMPTS.pop(name, None)
    return name


# ------------------------------------------------------------------------ call_activity
def test_sync_and_async_activities_return_their_values(harness: DurableHarness) -> None:
    status = harness.run_to_completion("hello_sequence", "Tokyo")

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["Hello Tokyo", "Hello async Tokyo", {"n": 1, "items": ["Tokyo"]}]
    assert status.input == "Tokyo"
    assert scheduled(status) == [
        (0, "TaskScheduled say_hello"),
        (1, "TaskScheduled say_hello_async"),
        (2, "TaskScheduled echo"),
    ]
    # The activity input is recorded as JSON text, the way the SDK emitted it.
    assert events(status, "TaskScheduled")[0]["Input"] == '"Tokyo"'
    assert [ev["TaskScheduledId"] for ev in events(status, "TaskCompleted")] == [0, 1, 2]
    completed = events(status, "ExecutionCompleted")
    assert len(completed) == 1 and completed[0]["EventId"] == 3


def test_activity_failure_is_an_exception_the_orchestrator_can_catch(harness: DurableHarness) -> None:
    status = harness.run_to_completion("activity_error_handled", "bad input")

    assert status.runtime_status == RuntimeStatus.COMPLETED
    caught = status.output["caught"]
    assert caught.startswith("Activity function 'fail_always' failed: ValueError: bad input")
    assert status.output["after"] == "Hello after failure"
    (failed,) = events(status, "TaskFailed")
    assert failed["TaskScheduledId"] == 0
    assert "ValueError: bad input" in failed["Reason"]
    assert scheduled(status) == [(0, "TaskScheduled fail_always"), (1, "TaskScheduled say_hello")]


def test_unhandled_activity_failure_fails_the_instance(harness: DurableHarness) -> None:
    status = harness.run_to_completion("activity_error_unhandled", "disk on fire")

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith(
        "Orchestrator function 'activity_error_unhandled' failed: "
        "Activity function 'fail_always' failed: ValueError: disk on fire"
    )
    (completed,) = events(status, "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == 3
    assert completed["Result"] == status.output


# ---------------------------------------------------------------- call_activity_with_retry
def test_retry_first_attempt_succeeds(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("retry_activity", {"key": key, "failures": 0, "max_attempts": 3})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"key": key, "attempt": 1}
    assert ATTEMPTS[key] == 1
    assert scheduled(status) == [(0, "TaskScheduled flaky")]
    assert events(status, "TimerCreated") == []


def test_retry_succeeds_after_failures(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("retry_activity", {"key": key, "failures": 2, "max_attempts": 4})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"key": key, "attempt": 3}
    assert ATTEMPTS[key] == 3
    # attempt, back-off timer, attempt, back-off timer, attempt (docs/durable-protocol.md §2.7)
    assert scheduled(status) == [
        (0, "TaskScheduled flaky"),
        (1, "TimerCreated"),
        (2, "TaskScheduled flaky"),
        (3, "TimerCreated"),
        (4, "TaskScheduled flaky"),
    ]
    assert [ev["TaskScheduledId"] for ev in events(status, "TaskFailed")] == [0, 2]
    assert [ev["TimerId"] for ev in events(status, "TimerFired")] == [1, 3]
    # Each back-off timer waits the first retry interval from the episode that saw the failure.
    for timer in events(status, "TimerCreated"):
        assert parse_ts(timer["FireAt"]) - episode_start_before(status, timer) == RETRY_DELAY


def test_retry_exhausted_surfaces_the_last_error(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("retry_activity", {"key": key, "failures": 10, "max_attempts": 3})

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output.startswith(
        f"Orchestrator function 'retry_activity' failed: Activity function 'flaky' failed: "
        f"RuntimeError: {key} attempt 3 failed"
    )
    assert "attempt 1 failed" not in status.output and "attempt 2 failed" not in status.output
    assert ATTEMPTS[key] == 3
    # Three attempts, two back-off timers and DTFx's final zero-length "dummy" timer.
    assert scheduled(status) == [
        (0, "TaskScheduled flaky"),
        (1, "TimerCreated"),
        (2, "TaskScheduled flaky"),
        (3, "TimerCreated"),
        (4, "TaskScheduled flaky"),
        (5, "TimerCreated"),
    ]
    dummy = events(status, "TimerCreated")[-1]
    assert parse_ts(dummy["FireAt"]) == episode_start_before(status, dummy)
    assert events(status, "ExecutionCompleted")[0]["EventId"] == 6


def test_retry_exhausted_can_be_caught(harness: DurableHarness, key: str) -> None:
    spec = {"key": key, "failures": 10, "max_attempts": 2, "catch": True}
    status = harness.run_to_completion("retry_activity", spec)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["error"].startswith(f"Activity function 'flaky' failed: RuntimeError: {key} attempt 2 failed")
    assert ATTEMPTS[key] == 2


@pytest.mark.parametrize("run", range(3))
def test_retry_inside_task_all_numbers_like_the_extension(harness: DurableHarness, key: str, run: int) -> None:
    # Protocol doc §2.6 "Verified example": A=0, B=1, A's back-off timer=2, A's re-attempt=3, C=4.
    # Repeated because which completion reaches the engine first varies from run to run.
    status = harness.run_to_completion("retry_in_task_all", {"key": key, "failures": 1})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == [{"key": key, "attempt": 2}, "Hello B", "Hello C"]
    assert scheduled(status) == [
        (0, "TaskScheduled flaky"),
        (1, "TaskScheduled say_hello"),
        (2, "TimerCreated"),
        (3, "TaskScheduled flaky"),
        (4, "TaskScheduled say_hello"),
    ]
    assert events(status, "TaskScheduled")[-1]["Input"] == '"C"'


def test_retry_inside_task_all_with_two_failures(harness: DurableHarness, key: str) -> None:
    status = harness.run_to_completion("retry_in_task_all", {"key": key, "failures": 2})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == [{"key": key, "attempt": 3}, "Hello B", "Hello C"]
    assert scheduled(status) == [
        (0, "TaskScheduled flaky"),
        (1, "TaskScheduled say_hello"),
        (2, "TimerCreated"),
        (3, "TaskScheduled flaky"),
        (4, "TimerCreated"),
        (5, "TaskScheduled flaky"),
        (6, "TaskScheduled say_hello"),
    ]


# -------------------------------------------------------------------- task_all / task_any
def test_task_all_fans_out_in_one_episode_and_keeps_order(harness: DurableHarness) -> None:
    names = ["a", "b", "c", "d", "e"]
    status = harness.run_to_completion("fan_out_fan_in", names)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == [f"Hello {n}" for n in names]
    assert scheduled(status) == [(i, "TaskScheduled say_hello") for i in range(5)]
    history = kinds(status)
    # All five were scheduled before any completed: they ran as one fan-out, not one by one.
    assert history[:6] == ["ExecutionStarted"] + ["TaskScheduled"] * 5
    assert sorted(ev["TaskScheduledId"] for ev in events(status, "TaskCompleted")) == [0, 1, 2, 3, 4]


def test_task_all_raises_the_failure_of_a_member(harness: DurableHarness) -> None:
    status = harness.run_to_completion("fan_out_with_failure")

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["error"].startswith("Activity function 'fail_always' failed: ValueError: one of many broke")


def test_task_any_returns_the_first_task_to_complete(harness: DurableHarness) -> None:
    iid = harness.start("first_of_two_events")
    assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING
    harness.raise_event(iid, "Right", {"picked": "right"})
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"winner": "Right", "value": {"picked": "right"}}


def test_activity_names_are_case_insensitive(harness: DurableHarness) -> None:
    status = harness.run_to_completion("call_by_name", {"activity": "Say_Hello", "input": "Case"})

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == "Hello Case"


def test_unknown_activity_fails_the_orchestration(harness: DurableHarness) -> None:
    # Like the extension: the whole orchestration fails, the orchestrator never gets a TaskFailed to catch.
    status = harness.run_to_completion("call_by_name", {"activity": "no_such_activity"})

    assert status.runtime_status == RuntimeStatus.FAILED
    assert "The function 'no_such_activity' doesn't exist" in status.output
    assert events(status, "TaskScheduled") == []


def test_an_activity_that_declares_context_gets_the_invocation_context() -> None:
    # The Python worker passes `context` (func.Context) to a function that declares it: each invocation its own.
    import azure.durable_functions as df
    import azure.functions as func

    app = df.DFApp()

    @app.orchestration_trigger(context_name="ctx")
    def twice(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        first = yield ctx.call_activity("who", "a")
        second = yield ctx.call_activity("who", "b")
        return [first, second]

    @app.activity_trigger(input_name="name")
    def who(name: str, context: func.Context) -> list[str]:
        return [name, context.function_name, context.invocation_id]

    with DurableHarness(app) as durable:
        status = durable.run_to_completion("twice")
    (a, fn_a, id_a), (b, fn_b, id_b) = status.output
    assert (a, b, fn_a, fn_b) == ("a", "b", "who", "who")
    assert id_a and id_b and id_a != id_b
