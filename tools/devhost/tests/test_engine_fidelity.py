"""The engine behaves as the Durable extension 2.13.7 on DurableTask.Core 2.17.1 does (a test of internals).

Each test names the source it follows (fidelity audit, tools/devhost/docs/fidelity-audit.md section A):
extension files at Azure/azure-functions-durable-extension a7c6d69 (v2.13.7), DTFx files at
Azure/durabletask tag durabletask.core-v2.17.1 / durabletask.azurestorage-v1.17.5.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devhost import replay_history
from devhost.harness import DurableHarness
from devhost.history import EventType, RuntimeStatus
from devhost.history_view import to_http_history
from devhost.model import Instance
from devhost.orchestration import Severity, event_mismatch

from .apps import step_app
from .apps.step_app import app
from .step_support import (
    IID,
    T0,
    Step,
    child_completed,
    completed,
    failed,
    fired,
    names,
    new_events,
    raised,
    reasons,
    resume,
    scheduled,
    started,
    suspend,
    terminate,
    timers,
    work,
)


@pytest.fixture(autouse=True)
def drift() -> Iterator[dict[str, object]]:
    saved = dict(step_app.DRIFT)
    yield step_app.DRIFT
    step_app.DRIFT.update(saved)


# --------------------------------------------------------------- A1: open tasks hold the end
def test_a_returned_orchestration_with_an_uncancelled_timer_stays_running_until_it_fires() -> None:
    # TaskOrchestrationExecutor.cs 153-172: complete only when !HasOpenTasks; a timer leaves the open list
    # only when cancelled (TaskOrchestrationContext.cs 262-268).
    step = Step(app)
    step(started("timeout_race", "forget"))
    returned = step(completed(0, "won"), after=timedelta(seconds=1))
    again = step(raised("unrelated"), after=timedelta(seconds=1))  # another episode: still held
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    assert "ExecutionCompleted" not in names(step.inst.history)
    (warning,) = returned.new_warnings
    assert "a timer due at" in warning and "timer.cancel()" in warning and "(task 1)" in warning
    assert again.warnings == [warning] and again.new_warnings == []  # for the log once per instance

    done = step(fired(1, T0 + timedelta(hours=1)), after=timedelta(hours=1))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert json.loads(step.inst.output or "") == "activity"
    assert done.finished == [(IID, "timeout_race", RuntimeStatus.COMPLETED)]


def test_the_host_logs_the_open_task_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="devhost"), DurableHarness(app) as harness:
        iid = harness.start("timeout_race", "forget")
        status = harness.run(iid)  # the harness fires the timer: held, then completed
    assert status.runtime_status == RuntimeStatus.COMPLETED
    warnings = [r.getMessage() for r in caplog.records if r.name == "devhost" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "still open: a timer due at" in warnings[0]


def test_a_cancelled_timer_does_not_hold_the_end() -> None:
    step = Step(app)
    step(started("timeout_race", "cancel"))
    result = step(completed(0, "won"))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert result.warnings == []


def test_a_failure_while_a_child_runs_waits_for_the_child() -> None:
    # TaskOrchestrationExecutor.cs 155-168: FailOrchestration too waits for !HasOpenTasks.
    step = Step(app)
    first = step(started("child_race"))
    assert scheduled(new_events(first)) == [(0, "SubOrchestrationInstanceCreated wait_go"), (1, "TimerCreated")]
    held = step(fired(1, T0 + timedelta(minutes=5)), after=timedelta(minutes=5))
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    assert "sub-orchestration 'wait_go' as 'the-child'" in held.warnings[0]

    step(child_completed(0, "late"), after=timedelta(minutes=1))
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert step.inst.output == "Orchestrator function 'child_race' failed: the child took too long"


def test_a_retry_in_progress_keeps_running_after_the_orchestrator_returned() -> None:
    # The shim's RetryInterceptor (RetryInterceptor.cs 57-92) keeps scheduling attempts and timers,
    # each an open task, until the retry succeeds or gives up.
    step = Step(app)
    step(started("with_retry", 2))
    step(failed(0, "attempt 1"))
    step(fired(1, step.now + timedelta(seconds=1)), after=timedelta(seconds=1))
    step(failed(2, "attempt 2"))
    assert step.inst.runtime_status == RuntimeStatus.RUNNING  # the dummy timer (task 3) is open
    step(fired(3, step.now))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED


# ------------------------------------------------- A2: after task_all failed fast, wait for all
def test_after_task_all_fails_fast_nothing_new_is_scheduled_until_every_child_finished() -> None:
    # OutOfProcOrchestrationShim.cs 181 (WhenAll is .NET Task.WhenAll) and 212 (each action awaited in turn).
    step = Step(app)
    step(started("compensating"))
    failing = step(failed(0, "fails fast"), after=timedelta(seconds=1))
    assert work(failing) == []  # the SDK asked for "compensate"; .NET still awaits task 1
    assert step.inst.runtime_status == RuntimeStatus.RUNNING

    rest = step(completed(1, "slow"), after=timedelta(seconds=1))
    assert work(rest) == [(2, "compensate")]
    step(completed(2, "undone"))
    assert json.loads(step.inst.output or "") == "compensated"


# ------------------------------------------------------ A3: a failing episode's actions are sent
def test_a_failing_episode_still_sends_its_signals() -> None:
    # OutOfProcOrchestrationShim.cs 83-90: the actions are replayed before the error is thrown.
    step = Step(app)
    step(started("signal_then_fail"))
    result = step(completed(0, "ok"))
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    signals = [json.loads(m.event["Input"]) for m in result.outbound if m.instance_id == "@tally@k"]
    assert [(s["op"], s.get("signal")) for s in signals] == [("add", True)]
    assert names(new_events(result)) == ["TaskCompleted", "EventSent", "ExecutionCompleted"]


# ------------------------------------------------------------------- A4: custom status size
def test_custom_status_over_16_kb_in_utf16_fails_the_orchestration() -> None:
    # DurableOrchestrationContext.cs 221-230 and MessagePayloadDataConverter.cs 60-71: the JSON's UTF-16
    # size, in whole KB, must not exceed 16; the shim calls SetCustomStatus before replaying (80).
    step = Step(app)
    step(started("big_status", "x" * 9000))  # 9,002 characters: 17.6 KB as UTF-16
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert step.inst.output == (
        "Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized payload must not "
        "exceed 16 KB. The current payload size is 17 KB."
    )
    assert scheduled(step.inst.history) == []

    fits = Step(app)
    fits(started("big_status", "x" * 8000))  # 15.6 KB
    assert fits.inst.runtime_status == RuntimeStatus.RUNNING


# ------------------------------------------------------ A5: nondeterminism only where DTFx sees it
def test_a_changed_entity_operation_or_target_is_a_warning_not_a_failure(drift: dict[str, object]) -> None:
    # TaskOrchestrationContext.cs 401: an EventSent is compared by Name only, "op" for every entity message.
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"))
    drift.update(op="subtract", key="other")
    result = step(completed(1, "after"))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert any("'add'" in w and "'subtract'" in w and "Azure does not detect this" in w for w in result.warnings)


def test_a_moved_wait_is_a_warning_not_a_failure(drift: dict[str, object]) -> None:
    # Waits take no sequence number: DTFx cannot see one moved after a task or removed (the task is reached
    # earlier than recorded, and matched by sequence number).
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"))
    drift.update(wait_first=False)
    result = step(completed(1, "after"))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert any("waits moved" in w for w in result.warnings)


def test_a_wait_moved_in_front_of_a_recorded_task_fails_as_in_dtfx(drift: dict[str, object]) -> None:
    # The signal was recorded in the first episode; the code now waits first. DTFx meets the recorded EventSent
    # while the shim still awaits the wait (OutOfProcOrchestrationShim.cs 199-219): "the current replay
    # execution hasn't (yet?) scheduled this task" (TaskOrchestrationContext.cs 377-386). (The audit's A5(a)
    # said DTFx cannot see a moved wait; it sees this direction.)
    drift.update(wait_first=False)
    step = Step(app)
    step(started("drifting"))
    drift.update(wait_first=True)
    result = step(raised("Go"))
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert "Non-Deterministic workflow detected: at sequence number 0" in (step.inst.output or "")
    assert "it comes only after WAIT_FOR_EXTERNAL_EVENT 'Go' finishes" in (step.inst.output or "")
    assert not any("waits moved" in w for w in result.warnings)


def test_a_changed_activity_name_still_fails() -> None:
    rec = {"EventType": EventType.TASK_SCHEDULED, "EventId": 0, "Name": "work"}
    assert event_mismatch(rec, {**rec, "Name": "WORK"}) is None
    assert event_mismatch(rec, {**rec, "Name": "compensate"}) is Severity.ERROR
    sent = {
        "EventType": EventType.EVENT_SENT,
        "EventId": 1,
        "Name": "op",
        "InstanceId": "@a@1",
        "Input": json.dumps({"op": "add"}),
    }
    assert event_mismatch(sent, {**sent, "InstanceId": "@a@2"}) is Severity.WARNING
    assert event_mismatch(sent, {**sent, "EventType": EventType.TIMER_CREATED}) is Severity.ERROR


# ------------------------------------------------------------------------------ A6 / A7: retries
def test_retry_with_zero_attempts_schedules_nothing_and_waits() -> None:
    # RetryInterceptor.cs 57: `for (retryCount = 0; retryCount < MaxNumberOfAttempts; ...)` never runs.
    step = Step(app)
    result = step(started("with_retry", 0))
    assert work(result) == [] and scheduled(step.inst.history) == []
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    assert "max_number_of_attempts 0" in result.warnings[0]


def test_retry_delay_is_capped_at_six_days() -> None:
    # RetryOptions.cs 18, 31 (extension): MaxRetryInterval defaults to 6 days; RetryInterceptor.cs 117.
    step = Step(app)
    step(started("long_retry"))
    result = step(failed(0, "attempt 1"))
    assert timers(result) == [(1, step.now + timedelta(days=6))]


# ----------------------------------------------------------------------- A8: sub-orchestration ids
@pytest.mark.parametrize("child_id", [IID.upper(), "The-Parent"])
def test_a_child_id_equal_to_self_or_parent_ignoring_case_fails(child_id: str) -> None:
    # DurableOrchestrationContext.cs 597-601.
    step = Step(app)
    parent = {
        "OrchestrationInstance": {"InstanceId": "the-parent", "ExecutionId": "p"},
        "Name": "x",
        "Version": "",
        "TaskScheduleId": 0,
    }
    step(started("sub_with_id", child_id, parent=parent))
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert step.inst.output == (
        "Orchestrator function 'sub_with_id' failed: The instance ID of a sub-orchestration "
        "must be different than the instance ID of a parent orchestration."
    )


# ----------------------------------------------------------- A10 / A11: continue-as-new bookkeeping
def test_continue_as_new_resets_created_time_and_carries_custom_status() -> None:
    # AzureTableTrackingStore.cs 1047 (CreatedTime follows the new ExecutionStarted);
    # TaskOrchestrationDispatcher.cs 556-557, 605 (status carried until a later work item sets or clears it).
    step = Step(app)
    step(started("status_generations", 0))
    step(completed(0, "gen 0"), after=timedelta(minutes=10))
    assert step.inst.execution_id == "exec-2"
    assert step.inst.created_time == T0 + timedelta(minutes=10)
    assert step.inst.custom_status == json.dumps("set by generation 0")

    step(raised("Go", 1), after=timedelta(minutes=1))  # a later work item; generation 1 sets no status
    assert step.inst.custom_status is None


# ----------------------------------------------------------------- A14: control before the start
@pytest.mark.parametrize("control", [suspend, resume, terminate])
def test_a_control_message_before_the_start_is_discarded(control) -> None:  # type: ignore[no-untyped-def]
    # AzureStorageOrchestrationService.cs 1038-1060 (IsExecutableInstance): no ExecutionStarted, discarded.
    step = Step(app)
    step.instance = Instance(
        instance_id=IID,
        name="chain",
        runtime_status=RuntimeStatus.PENDING,
        execution_id="exec-1",
        created_time=T0,
        last_updated_time=T0,
    )
    result = step(control("too early"))
    assert reasons(result) == ["the instance has not started"]
    assert step.inst.history == []
    step(started("chain"))
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    assert step.inst.history[1]["EventType"] == EventType.EXECUTION_STARTED


@pytest.mark.parametrize("same_work_item", [False, True])
def test_an_event_before_the_start_is_discarded_unless_the_start_comes_with_it(same_work_item: bool) -> None:
    # AzureStorageOrchestrationService.cs 1038-1060 (IsExecutableInstance) and 782-830: a work item for an
    # orchestration with no ExecutionStarted in its history or its new messages is discarded (DiscardingWorkItem);
    # only entities auto-start. With the start among the messages the instance runs and gets the event.
    step = Step(app)
    step.instance = Instance(
        instance_id=IID,
        name="wait_go",
        runtime_status=RuntimeStatus.PENDING,
        execution_id="exec-1",
        created_time=T0,
        last_updated_time=T0,
    )
    if same_work_item:
        step(raised("Go", "early"), started("wait_go"))
        assert step.inst.runtime_status == RuntimeStatus.COMPLETED
        assert json.loads(step.inst.output or "") == "early"
        return
    result = step(raised("Go", "early"))
    assert reasons(result) == ["the instance has not started"]
    assert step.inst.history == [] and step.inst.buffered == []
    step(started("wait_go"))
    assert step.inst.runtime_status == RuntimeStatus.RUNNING  # the early event is gone: it waits
    step(raised("Go", "late"))
    assert json.loads(step.inst.output or "") == "late"


# ---------------------------------------------------------------- A15: activity failure details
def test_an_activity_failure_carries_the_users_traceback_and_cause_without_devhost_frames(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The worker reports the function's own traceback, with its chained cause (the extension's BasicPython
    # e2e test asserts both in the log); devhost's and the thread pool's frames are not the user's.
    with caplog.at_level(logging.INFO, logger="devhost"), DurableHarness(app) as harness:
        status = harness.run_to_completion("call_chained_failure", "seven")
    assert status.runtime_status == RuntimeStatus.FAILED
    (failure,) = [ev for ev in status.history if ev["EventType"] == EventType.TASK_FAILED]
    assert failure["Reason"] == "Activity function 'chained_failure' failed: RuntimeError: cannot use 'seven'"
    details = failure["Details"]
    assert "ValueError: invalid literal for int()" in details
    assert "The above exception was the direct cause of the following exception" in details
    assert "step_app.py" in details and "in chained_failure" in details
    assert "run_activity" not in details and "activities.py" not in details and "concurrent" not in details
    executed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Executed 'Functions.chained")]
    assert "The above exception was the direct cause" in executed[0]


def test_the_replay_checker_reports_what_only_devhost_sees_as_a_warning(drift: dict[str, object]) -> None:
    # A recording made before the entity operation changed still replays (DTFx compares the EventSent Name
    # only, TaskOrchestrationContext.cs 401); the report is OK and carries the difference as a warning.
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"), after=timedelta(seconds=1))
    step(completed(1, "after"), after=timedelta(seconds=1))
    recording = list(step.inst.history)

    assert replay_history(app, recording).warnings == []
    drift.update(op="subtract")
    report = replay_history(app, recording)
    assert report.ok, report.divergence
    assert any("'subtract'" in w for w in report.warnings)
    assert report.summary().startswith("OK with 1 warning(s)")


def test_the_full_replay_warns_of_a_signal_now_sent_in_an_earlier_episode(drift: dict[str, object]) -> None:
    # Recorded with the wait first: the signal is in the second episode. The code now signals first: DTFx
    # replays the action before it meets the recorded EventSent, and compares by sequence number and Name
    # only (TaskOrchestrationContext.cs 377-411), so Azure replays it. A warning, as the engine's.
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"), after=timedelta(seconds=1))
    step(completed(1, "after"), after=timedelta(seconds=1))
    recording = list(step.inst.history)

    drift.update(wait_first=False)
    report = replay_history(app, recording)
    assert report.ok, report.divergence
    assert any(
        "sequence number 0" in w
        and "already here, the recording in episode 2" in w
        and "Azure does not detect this" in w
        for w in report.warnings
    ), report.warnings


def test_the_full_replay_still_fails_a_signal_now_sent_in_a_later_episode(drift: dict[str, object]) -> None:
    # Recorded with the signal first (episode 1). The code now waits first: when DTFx meets the recorded
    # EventSent the shim is still blocked on the wait (OutOfProcOrchestrationShim.cs 199-219 awaits each action
    # in turn), so the action is not there yet: "the current replay execution hasn't (yet?) scheduled this
    # task" (TaskOrchestrationContext.cs 380-386). Azure fails it, so the checker reports a divergence.
    drift.update(wait_first=False)
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"), after=timedelta(seconds=1))
    step(completed(1, "after"), after=timedelta(seconds=1))
    recording = list(step.inst.history)

    drift.update(wait_first=True)
    report = replay_history(app, recording)
    assert not report.ok
    assert "episode 1" in (report.divergence or "")


@pytest.mark.parametrize("finished", [False, True])
def test_the_http_replay_fails_a_signal_now_sent_after_a_wait_but_not_before(
    drift: dict[str, object], finished: bool
) -> None:
    # As the full format: a recorded EventSent the code reaches only after a wait moved in front of it fails
    # on Azure (TaskOrchestrationContext.cs 377-386); sending it earlier than recorded does not.
    recordings = {}
    for wait_first in (True, False):
        drift.update(wait_first=wait_first)
        step = Step(app)
        step(started("drifting"))
        step(raised("Go"), after=timedelta(seconds=1))
        if finished:
            step(completed(1, "after"), after=timedelta(seconds=1))
        recordings[wait_first] = {
            "name": "drifting",
            "historyEvents": to_http_history(step.inst.history, show_input=True, show_output=True),
        }
    drift.update(wait_first=False)
    assert replay_history(app, recordings[True]).ok  # signal now earlier: fine
    drift.update(wait_first=True)
    report = replay_history(app, recordings[False])  # signal now after the wait: Azure fails it
    assert not report.ok
    assert "has sent only 0 message(s) at that point" in (report.divergence or "")


# ------------------------------------------------------------------- B1: a batch that fails whole
def test_an_entity_batch_that_fails_as_a_whole_is_logged_loudly_and_answered_with_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Azure (inferred, extension: ExecuteOutOfProcBatch raises, AbortOnInternalError abandons the work item)
    # retries such a batch without end and never answers; devhost answers each caller with the error (the
    # closest behaviour that does not loop) and says so in the log (README: Differences from the Azure host).
    with caplog.at_level(logging.ERROR, logger="devhost"), DurableHarness(app) as harness:
        status = harness.run_to_completion("call_unsaveable")
        state = harness.entity_state("Unsaveable", "k")
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert "does not expose a `to_json` function" in status.output["error"]
    assert state is None  # nothing committed
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "devhost"]
    assert len(errors) == 1 and "failed as a whole" in errors[0] and "retried without end" in errors[0]


def test_an_unknown_activity_fails_the_orchestration_once_the_tasks_before_it_finished() -> None:
    # The shim's InvokeAPIFromAction throws for an unknown function (OutOfProcOrchestrationShim.cs 203) after
    # invoking the actions before it; the failure waits for those (TaskOrchestrationExecutor.cs 153-168), and
    # what comes after it is never scheduled.
    step = Step(app)
    first = step(started("fan_out_to_a_missing_activity"))
    assert work(first) == [(0, "work")]
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    done = step(completed(0, "ok"))
    assert work(done) == []
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert step.inst.output == (
        "Orchestrator function 'fan_out_to_a_missing_activity' failed: The function 'missing' "
        "doesn't exist, is disabled, or is not an activity function."
    )


def test_the_action_limit_fails_the_orchestration_as_the_extension_does() -> None:
    # DurableOrchestrationContext.cs 1209-1214: each action invoked counts; at maxOrchestrationActions
    # (DurableTaskOptions.cs 183, default 100,000) the next one throws.
    step = Step(app)
    step.options.max_actions = 2
    first = step(started("fan_out", 3))
    assert work(first) == [(0, "work"), (1, "work")]
    step(completed(0, "a"), completed(1, "b"))
    assert step.inst.runtime_status == RuntimeStatus.FAILED
    assert step.inst.output == (
        "Orchestrator function 'fan_out' failed: Maximum amount of orchestration actions (2) has been reached. "
        "This value can be configured in host.json file as MaxOrchestrationActions."
    )


def test_the_http_replay_reports_another_entity_operation_as_a_warning(drift: dict[str, object]) -> None:
    step = Step(app)
    step(started("drifting"))
    step(raised("Go"), after=timedelta(seconds=1))  # still running: the HTTP replay compares entity messages
    payload = {
        "name": "drifting",
        "historyEvents": to_http_history(step.inst.history, show_input=True, show_output=True),
    }
    assert replay_history(app, payload).warnings == []
    drift.update(key="other")
    report = replay_history(app, payload)
    assert report.ok, report.divergence
    assert any("entity message 1" in w and "@tally@other" in w for w in report.warnings)
