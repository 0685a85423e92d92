"""The pure orchestration step on built histories (a test of internals: `devhost.orchestration`).

Each test delivers hand-built events to `process_orchestration` with an explicit clock and checks
the history it appended and the messages it sent, as durabletask-python tests its executor. The
orchestrator code is real SDK code (tests/apps/step_app.py); nothing else runs.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.orchestration`.
"""

from __future__ import annotations

import json
from datetime import timedelta

from devhost.history import EventType, RuntimeStatus
from devhost.orchestration import entity_request_id

from .apps.step_app import app
from .step_support import (
    IID,
    T0,
    Step,
    child_completed,
    completed,
    entity_reply,
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


# ------------------------------------------------------------------------- first episode
def test_start_schedules_the_first_activity_in_one_framed_episode() -> None:
    step = Step(app)
    result = step(started("chain"))

    assert result.history_reset and result.episodes == 1
    assert names(new_events(result), framing=True) == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "TaskScheduled",
        "OrchestratorCompleted",
    ]
    assert work(result) == [(0, "work")]
    assert step.inst.runtime_status == RuntimeStatus.RUNNING


def test_each_completion_appends_one_episode_until_the_output() -> None:
    step = Step(app)
    step(started("chain"))
    second = step(completed(0, "r1"), after=timedelta(seconds=1))
    assert names(new_events(second), framing=True) == [
        "OrchestratorStarted",
        "TaskCompleted",
        "TaskScheduled",
        "OrchestratorCompleted",
    ]
    assert work(second) == [(1, "work")]

    done = step(completed(1, "r2"), after=timedelta(seconds=1))
    assert names(new_events(done)) == ["TaskCompleted", "ExecutionCompleted"]
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert json.loads(step.inst.output or "") == ["r1", "r2"]
    assert done.finished == [(step.inst.instance_id, "chain", RuntimeStatus.COMPLETED)]


# ---------------------------------------------------------------------------- duplicates
def test_a_duplicate_completion_in_the_same_work_item_is_dropped() -> None:
    step = Step(app)
    step(started("chain"))
    result = step(completed(0, "r1"), completed(0, "again"))

    assert reasons(result) == ["duplicate completion for task 0"]
    assert [ev["Result"] for ev in new_events(result) if ev["EventType"] == EventType.TASK_COMPLETED] == ['"r1"']


def test_a_completion_redelivered_in_a_later_work_item_is_dropped() -> None:
    step = Step(app)
    step(started("chain"))
    step(completed(0, "r1"))
    result = step(completed(0, "r1"))

    assert reasons(result) == ["duplicate completion for task 0"]
    assert result.episodes == 0 and new_events(result) == []


def test_a_redelivered_start_is_dropped() -> None:
    step = Step(app)
    step(started("chain"))
    result = step(started("chain"))

    assert reasons(result) == ["duplicate ExecutionStarted"]
    assert result.episodes == 0 and work(result) == []


def test_a_redelivered_external_event_is_applied_once() -> None:
    step = Step(app)
    step(started("wait_go"))
    go = raised("Go", "v")
    step(go)
    again = step(go)

    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert reasons(again) == ["message already applied"]


def test_a_duplicate_entity_response_is_dropped() -> None:
    step = Step(app)
    step(started("ask_entity"))
    rid = entity_request_id(step.inst.instance_id, step.inst.execution_id, 0)
    reply = entity_reply(rid, 7, entity="@tally@k")
    result = step(reply, entity_reply(rid, 8, entity="@tally@k"))

    assert reasons(result) == ["duplicate entity response"]
    assert json.loads(step.inst.output or "") == 7


# --------------------------------------------------------------- results out of order
def test_a_result_before_its_scheduling_event_is_deferred_then_applied() -> None:
    step = Step(app)
    step(started("chain"))
    early = completed(1, "r2")  # task 1 is scheduled only once task 0 completed
    result = step(early)
    assert result.deferred == [early] and result.episodes == 0

    step(completed(0, "r1"))
    assert scheduled(step.inst.history) == [(0, "TaskScheduled work"), (1, "TaskScheduled work")]
    done = step(early)
    assert done.deferred == []
    assert json.loads(step.inst.output or "") == ["r1", "r2"]


def test_an_entity_response_before_its_request_is_deferred() -> None:
    step = Step(app)
    step(started("ask_entity"))
    stray = entity_reply("a-request-not-sent-yet", 1, entity="@tally@k")
    result = step(stray)
    assert result.deferred == [stray]
    assert step.inst.runtime_status == RuntimeStatus.RUNNING


def test_a_message_for_another_execution_is_dropped() -> None:
    step = Step(app)
    step(started("chain"))
    stale = completed(0, "old")
    stale.execution_id = "an-earlier-execution"
    result = step(stale)
    assert reasons(result) == ["for execution an-earlier-execution, current is exec-1"]


# -------------------------------------------------------------------- while suspended
def test_events_while_suspended_go_into_history_and_run_the_code_but_schedule_nothing() -> None:
    # A13. TaskOrchestrationShim.cs 139-150: the function is called with the whole history, suspension and
    # all (the SDK ignores ExecutionSuspended); TaskOrchestrationExecutor.cs 199-204 and
    # TaskOrchestrationContext.cs 563-606: DTFx holds the events back from the shim until ExecutionResumed,
    # so the returned actions past them are not scheduled and the orchestration cannot end.
    step = Step(app)
    step(started("approve_then_work"))
    step(suspend("maintenance"))
    assert step.inst.runtime_status == RuntimeStatus.SUSPENDED

    held = step(raised("Approve", "ops"))
    assert held.episodes == 1 and work(held) == [] and step.inst.buffered == []
    assert names(new_events(held), framing=True) == ["OrchestratorStarted", "EventRaised", "OrchestratorCompleted"]
    assert json.loads(step.inst.custom_status or "") == "approved by ops"  # the code ran past its wait
    assert step.inst.runtime_status == RuntimeStatus.SUSPENDED
    assert scheduled(step.inst.history) == []

    result = step(resume("done"))
    assert names(new_events(result), framing=True) == [
        "OrchestratorStarted",
        "ExecutionResumed",
        "TaskScheduled",
        "OrchestratorCompleted",
    ]
    assert work(result) == [(0, "work")]
    step(completed(0, "worked"))
    assert json.loads(step.inst.output or "") == "worked"


def test_an_orchestration_that_would_return_while_suspended_ends_only_after_resume() -> None:
    step = Step(app)
    step(started("wait_go"))
    step(suspend())
    held = step(raised("Go", "while suspended"))
    assert held.finished == [] and step.inst.runtime_status == RuntimeStatus.SUSPENDED
    result = step(resume())
    assert names(new_events(result), framing=True) == [
        "OrchestratorStarted",
        "ExecutionResumed",
        "ExecutionCompleted",
        "OrchestratorCompleted",
    ]
    assert json.loads(step.inst.output or "") == "while suspended"


def test_a_completion_while_suspended_waits_for_resume() -> None:
    step = Step(app)
    step(started("chain"))
    step(suspend())
    held = step(completed(0, "r1"))
    assert work(held) == [] and "TaskCompleted" in names(step.inst.history)
    result = step(resume())
    assert work(result) == [(1, "work")]


# ----------------------------------------------------------------- continue-as-new
def test_continue_as_new_starts_a_new_execution_with_the_new_input() -> None:
    step = Step(app)
    step(started("counter_loop", {"items": [], "limit": 2}))
    result = step(raised("Item", "a"))

    assert result.history_reset
    assert step.inst.execution_id == "exec-2"
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    assert json.loads(json.loads(step.inst.input or "")) == {"items": ["a"], "limit": 2}
    assert names(step.inst.history, framing=True) == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "OrchestratorCompleted",
    ]

    step(raised("Item", "b"))
    assert json.loads(step.inst.output or "") == ["a", "b"]


def test_an_event_after_the_continue_as_new_point_is_carried_into_the_next_execution() -> None:
    step = Step(app)
    step(started("counter_loop", {"items": [], "limit": 2}))
    result = step(raised("Item", "a"), raised("Item", "b"))  # "b" arrives after the first execution ended

    assert step.inst.execution_id == "exec-2"
    assert json.loads(step.inst.output or "") == ["a", "b"]
    assert result.finished == [(step.inst.instance_id, "counter_loop", RuntimeStatus.COMPLETED)]
    started_events = [ev for ev in step.inst.history if ev["EventType"] == EventType.EXECUTION_STARTED]
    assert len(started_events) == 1


# --------------------------------------------------------------------- retry numbering
def test_retry_takes_a_timer_then_a_new_task_number_per_attempt() -> None:
    step = Step(app)
    step(started("with_retry", 3))
    first = step(failed(0, "attempt 1"), after=timedelta(seconds=5))
    assert scheduled(new_events(first)) == [(1, "TimerCreated")]
    assert timers(first) == [(1, step.now + timedelta(seconds=1))]  # firstRetryInterval

    second = step(fired(1, step.now + timedelta(seconds=1)), after=timedelta(seconds=1))
    assert work(second) == [(2, "work")]

    again = step(failed(2, "attempt 2"))
    assert timers(again) == [(3, step.now + timedelta(seconds=1))]
    third = step(fired(3, step.now + timedelta(seconds=1)), after=timedelta(seconds=1))
    assert work(third) == [(4, "work")]

    last = step(failed(4, "attempt 3"))
    # After the last attempt DTFx still takes one timer, due at once (docs/durable-protocol.md §2.7).
    assert timers(last) == [(5, step.now)]
    step(fired(5, step.now))
    assert step.inst.runtime_status == RuntimeStatus.COMPLETED
    assert "attempt 3" in json.loads(step.inst.output or "")["gave_up"]
    assert scheduled(step.inst.history) == [
        (0, "TaskScheduled work"),
        (1, "TimerCreated"),
        (2, "TaskScheduled work"),
        (3, "TimerCreated"),
        (4, "TaskScheduled work"),
        (5, "TimerCreated"),
    ]


def test_fan_out_numbers_tasks_in_action_order() -> None:
    step = Step(app)
    result = step(started("fan_out", 3))
    assert work(result) == [(0, "work"), (1, "work"), (2, "work")]
    step(completed(2, "c"), completed(0, "a"))
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    step(completed(1, "b"))
    assert json.loads(step.inst.output or "") == ["a", "b", "c"]


def test_t0_is_the_first_episode_time() -> None:
    step = Step(app)
    step(started("chain"))
    assert step.inst.history[0]["Timestamp"].startswith(T0.strftime("%Y-%m-%dT%H:%M:%S"))


# ------------------------------------------------------------------ messages to others
def test_a_sub_orchestration_is_started_with_its_parent_and_reports_back() -> None:
    step = Step(app)
    first = step(started("sub_with_id", "kid"))
    (start,) = [m for m in first.outbound if m.instance_id == "kid"]
    assert start.event["EventType"] == EventType.EXECUTION_STARTED and start.event["Name"] == "wait_go"
    assert start.event["ParentInstance"]["OrchestrationInstance"] == {"InstanceId": IID, "ExecutionId": "exec-1"}
    assert start.event["ParentInstance"]["TaskScheduleId"] == 0
    assert start.sender == IID

    step(child_completed(0, "from the child"))
    assert json.loads(step.inst.output or "") == "from the child"


def test_an_entity_call_sends_a_request_the_reply_is_matched_by() -> None:
    step = Step(app)
    first = step(started("ask_entity"))
    (request_msg,) = first.outbound
    assert request_msg.instance_id == "@tally@k" and request_msg.event["Name"] == "op"
    request = json.loads(request_msg.event["Input"])
    assert request["op"] == "get" and request["parent"] == IID and request["parentExecution"] == "exec-1"
    assert request["id"] == entity_request_id(IID, "exec-1", 0)
    assert scheduled(new_events(first)) == [(0, "EventSent")]


def test_terminate_ends_the_execution_with_the_reason() -> None:
    step = Step(app)
    step(started("wait_go"))
    result = step(terminate("enough"))
    assert step.inst.runtime_status == RuntimeStatus.TERMINATED
    assert step.inst.output == "enough"
    assert names(new_events(result)) == ["ExecutionTerminated", "ExecutionCompleted"]
    assert result.finished == [(IID, "wait_go", RuntimeStatus.TERMINATED)]


def test_a_timer_over_six_days_is_created_in_three_day_parts() -> None:
    # The extension advertises maximumShortTimerDuration 6 days and longRunningTimerIntervalDuration 3 days
    # (docs/durable-protocol.md §2.5); the SDK asks for 3-day parts until 6 days or less remain.
    step = Step(app)
    first = step(started("sleep_days", 7))
    assert timers(first) == [(0, T0 + timedelta(days=3))]
    second = step(fired(0, T0 + timedelta(days=3)), after=timedelta(days=3))
    assert timers(second) == [(1, T0 + timedelta(days=7))]
    assert step.inst.runtime_status == RuntimeStatus.RUNNING
    step(fired(1, T0 + timedelta(days=7)), after=timedelta(days=4))
    assert json.loads(step.inst.output or "") == "woke"
