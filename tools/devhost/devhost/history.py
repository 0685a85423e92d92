"""History events in the exact shape the Durable extension hands to the Python SDK.

Events are plain JSON-ready dicts (DTFx `HistoryEvent` data members, PascalCase, enums
as ints) so that building the orchestrator context is a single `json.dumps` and stores
can persist them without a translation layer. See docs/durable-protocol.md §1.3.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]


class EventType(enum.IntEnum):
    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20
    EXECUTION_REWOUND = 21


# DTFx names, as the Azure Storage provider and the HTTP API spell them.
EVENT_NAMES: dict[int, str] = {
    EventType.EXECUTION_STARTED: "ExecutionStarted",
    EventType.EXECUTION_COMPLETED: "ExecutionCompleted",
    EventType.EXECUTION_FAILED: "ExecutionFailed",
    EventType.EXECUTION_TERMINATED: "ExecutionTerminated",
    EventType.TASK_SCHEDULED: "TaskScheduled",
    EventType.TASK_COMPLETED: "TaskCompleted",
    EventType.TASK_FAILED: "TaskFailed",
    EventType.SUB_ORCHESTRATION_CREATED: "SubOrchestrationInstanceCreated",
    EventType.SUB_ORCHESTRATION_COMPLETED: "SubOrchestrationInstanceCompleted",
    EventType.SUB_ORCHESTRATION_FAILED: "SubOrchestrationInstanceFailed",
    EventType.TIMER_CREATED: "TimerCreated",
    EventType.TIMER_FIRED: "TimerFired",
    EventType.ORCHESTRATOR_STARTED: "OrchestratorStarted",
    EventType.ORCHESTRATOR_COMPLETED: "OrchestratorCompleted",
    EventType.EVENT_SENT: "EventSent",
    EventType.EVENT_RAISED: "EventRaised",
    EventType.CONTINUE_AS_NEW: "ContinueAsNew",
    EventType.GENERIC: "GenericEvent",
    EventType.HISTORY_STATE: "HistoryState",
    EventType.EXECUTION_SUSPENDED: "ExecutionSuspended",
    EventType.EXECUTION_RESUMED: "ExecutionResumed",
    EventType.EXECUTION_REWOUND: "ExecutionRewound",
}
EVENT_TYPES_BY_NAME: dict[str, int] = {v: k for k, v in EVENT_NAMES.items()}

# Events that resolve a task the SDK is waiting on, keyed to the field linking them back.
COMPLETION_ID_FIELD: dict[int, str] = {
    EventType.TASK_COMPLETED: "TaskScheduledId",
    EventType.TASK_FAILED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_COMPLETED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_FAILED: "TaskScheduledId",
    EventType.TIMER_FIRED: "TimerId",
}
SCHEDULING_TYPES = frozenset(
    {
        EventType.TASK_SCHEDULED,
        EventType.SUB_ORCHESTRATION_CREATED,
        EventType.TIMER_CREATED,
        EventType.EVENT_SENT,
    }
)


class RuntimeStatus(enum.StrEnum):
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    PENDING = "Pending"
    SUSPENDED = "Suspended"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED}
)
# DTFx `OrchestrationStatus` integers used inside ExecutionCompleted events.
ORCHESTRATION_STATUS_INT = {
    RuntimeStatus.RUNNING: 0,
    RuntimeStatus.COMPLETED: 1,
    RuntimeStatus.CONTINUED_AS_NEW: 2,
    RuntimeStatus.FAILED: 3,
    RuntimeStatus.CANCELED: 4,
    RuntimeStatus.TERMINATED: 5,
    RuntimeStatus.PENDING: 6,
    RuntimeStatus.SUSPENDED: 7,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(dt: datetime) -> str:
    """ISO-8601 UTC with a `Z` (the SDK compares timestamps, so they must never be naive)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def parse_ts(text: str) -> datetime:
    """Parse the timestamps this module writes (and the SDK's `%fZ` form)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # fromisoformat in 3.11 accepts 1-6 fractional digits; DTFx writes up to 7.
    if "." in value:
        head, rest = value.split(".", 1)
        frac, _, tz = rest.partition("+")
        if "-" in frac:
            frac, _, tz2 = frac.partition("-")
            tz = "-" + tz2
        else:
            tz = "+" + tz if tz else ""
        value = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _event(event_type: int, now: datetime, event_id: int = -1, **fields: Any) -> Event:
    ev: Event = {"EventType": int(event_type), "EventId": event_id, "IsPlayed": False, "Timestamp": format_ts(now)}
    ev.update(fields)
    return ev


def orchestrator_started(now: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_STARTED, now)


def orchestrator_completed(now: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_COMPLETED, now)


def execution_started(
    now: datetime,
    *,
    instance_id: str,
    execution_id: str,
    name: str,
    input_text: str | None,
    parent: dict[str, Any] | None = None,
    generation: int = 0,
    scheduled_start: datetime | None = None,
    tags: dict[str, str] | None = None,
    version: str | None = None,
) -> Event:
    return _event(
        EventType.EXECUTION_STARTED,
        now,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version=version,
        Input=input_text,
        Tags=tags,
        Correlation=None,
        ParentTraceContext=None,
        ScheduledStartTime=format_ts(scheduled_start) if scheduled_start else None,
        Generation=generation,
        GenerateNewTrace=False,
    )


def execution_completed(
    now: datetime, event_id: int, status: RuntimeStatus, result: str | None, details: str | None = None
) -> Event:
    fields: dict[str, Any] = {
        "OrchestrationStatus": ORCHESTRATION_STATUS_INT[status],
        "Result": result,
        "FailureDetails": None,
    }
    if details is not None:
        fields["Details"] = details
    return _event(EventType.EXECUTION_COMPLETED, now, event_id, **fields)


def continue_as_new(now: datetime, event_id: int, new_input: str | None) -> Event:
    return _event(
        EventType.CONTINUE_AS_NEW,
        now,
        event_id,
        OrchestrationStatus=ORCHESTRATION_STATUS_INT[RuntimeStatus.CONTINUED_AS_NEW],
        Result=new_input,
        FailureDetails=None,
    )


def execution_terminated(now: datetime, reason: str | None) -> Event:
    return _event(EventType.EXECUTION_TERMINATED, now, Input=reason)


def execution_suspended(now: datetime, reason: str | None) -> Event:
    return _event(EventType.EXECUTION_SUSPENDED, now, Reason=reason)


def execution_resumed(now: datetime, reason: str | None) -> Event:
    return _event(EventType.EXECUTION_RESUMED, now, Reason=reason)


def execution_rewound(now: datetime, reason: str | None) -> Event:
    return _event(
        EventType.EXECUTION_REWOUND,
        now,
        Reason=reason,
        ParentExecutionId=None,
        InstanceId=None,
        ParentTraceContext=None,
    )


def rewound(event: Event) -> Event:
    """What rewind turns a failure (and what it refers to) into: a GenericEvent the SDK ignores."""
    return {
        "EventType": int(EventType.GENERIC),
        "EventId": -1,
        "IsPlayed": event.get("IsPlayed", False),
        "Timestamp": event["Timestamp"],
        "Data": None,
        "Reason": f"Rewound: {event_name(event)}",
    }


def task_scheduled(now: datetime, event_id: int, name: str, input_text: str | None) -> Event:
    return _event(EventType.TASK_SCHEDULED, now, event_id, Name=name, Version="", Input=input_text, Tags=None)


def task_completed(now: datetime, task_id: int, result: str | None) -> Event:
    return _event(EventType.TASK_COMPLETED, now, TaskScheduledId=task_id, Result=result)


def task_failed(now: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(
        EventType.TASK_FAILED, now, TaskScheduledId=task_id, Reason=reason, Details=details, FailureDetails=None
    )


def sub_orchestration_created(
    now: datetime, event_id: int, name: str, instance_id: str, input_text: str | None, version: str = ""
) -> Event:
    return _event(
        EventType.SUB_ORCHESTRATION_CREATED,
        now,
        event_id,
        Name=name,
        Version=version,
        InstanceId=instance_id,
        Input=input_text,
    )


def sub_orchestration_completed(now: datetime, task_id: int, result: str | None) -> Event:
    return _event(EventType.SUB_ORCHESTRATION_COMPLETED, now, TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(now: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(
        EventType.SUB_ORCHESTRATION_FAILED,
        now,
        TaskScheduledId=task_id,
        Reason=reason,
        Details=details,
        FailureDetails=None,
    )


def timer_created(now: datetime, event_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TIMER_CREATED, now, event_id, FireAt=format_ts(fire_at))


def timer_fired(now: datetime, timer_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TIMER_FIRED, now, TimerId=timer_id, FireAt=format_ts(fire_at))


def event_sent(now: datetime, event_id: int, target: str, name: str, input_text: str | None) -> Event:
    return _event(EventType.EVENT_SENT, now, event_id, InstanceId=target, Name=name, Input=input_text)


def event_raised(now: datetime, name: str, input_text: str | None) -> Event:
    return _event(EventType.EVENT_RAISED, now, Name=name, Input=input_text, ParentTraceContext=None)


def event_name(event: Event) -> str:
    return EVENT_NAMES.get(int(event["EventType"]), str(event["EventType"]))
