"""How a replay classifies events and decides that a recorded one and a replayed one are the same."""

from __future__ import annotations

import json
from typing import Any

from ..describe import status_of
from ..entity_messages import parse_request
from ..history import SCHEDULING_TYPES, Event, EventType
from ..history_view import parse_json_token

# Events a host delivers to an orchestration (the "new events" of an episode).
INCOMING_TYPES = frozenset(
    {
        EventType.EXECUTION_STARTED,
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.SUB_ORCHESTRATION_COMPLETED,
        EventType.SUB_ORCHESTRATION_FAILED,
        EventType.TIMER_FIRED,
        EventType.EVENT_RAISED,
        EventType.EXECUTION_TERMINATED,
        EventType.EXECUTION_SUSPENDED,
        EventType.EXECUTION_RESUMED,
    }
)
# Events an episode produces: what the orchestrator decided. These are what gets compared.
OUTCOME_TYPES = frozenset({EventType.EXECUTION_COMPLETED, EventType.CONTINUE_AS_NEW})
OUTPUT_TYPES = SCHEDULING_TYPES | OUTCOME_TYPES
CONTROL_TYPES = frozenset({EventType.EXECUTION_TERMINATED, EventType.EXECUTION_SUSPENDED, EventType.EXECUTION_RESUMED})
TASK_TYPES = frozenset({EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED})
SCHEDULED_BY = {
    EventType.TASK_COMPLETED: EventType.TASK_SCHEDULED,
    EventType.TASK_FAILED: EventType.TASK_SCHEDULED,
    EventType.SUB_ORCHESTRATION_COMPLETED: EventType.SUB_ORCHESTRATION_CREATED,
    EventType.SUB_ORCHESTRATION_FAILED: EventType.SUB_ORCHESTRATION_CREATED,
}


def same_event(rec: Event, new: Event) -> bool:
    t = rec["EventType"]
    if t != new["EventType"]:
        return False
    if t in TASK_TYPES:
        return (
            rec.get("EventId") == new.get("EventId")
            and str(rec.get("Name", "")).lower() == str(new.get("Name", "")).lower()
        )
    if t == EventType.TIMER_CREATED:
        return bool(rec.get("EventId") == new.get("EventId"))
    if t == EventType.EVENT_SENT:
        return rec.get("EventId") == new.get("EventId") and same_message(rec, new)
    if t == EventType.EXECUTION_COMPLETED:
        return same_outcome(rec, new)
    if t == EventType.CONTINUE_AS_NEW:
        return json_equal(rec.get("Result"), new.get("Result"))
    return True


def same_message(rec: Event, new: Event) -> bool:
    """EventSent: same target, and the same operation when the recording shows it."""
    if str(rec.get("InstanceId") or "") != str(new.get("InstanceId") or ""):
        return False
    if "Input" not in rec:
        return True
    return request_of(rec).get("op") == request_of(new).get("op")


def same_outcome(rec: Event, new: Event) -> bool:
    """Same status; for Completed also the same output. Failure reasons are not compared: they embed
    tracebacks (file paths, line numbers) that change with any edit."""
    if rec["EventType"] != new["EventType"] or status_of(rec) != status_of(new):
        return False
    if rec["EventType"] == EventType.CONTINUE_AS_NEW:
        return json_equal(rec.get("Result"), new.get("Result"))
    if status_of(rec) == 1 and "Result" in rec:
        return json_equal(rec.get("Result"), new.get("Result"))
    return True


def json_equal(a: Any, b: Any) -> bool:
    return bool(parse_json_token(a) == parse_json_token(b))


def seq_of(ev: Event | None) -> int | None:
    if ev is None or ev["EventType"] not in SCHEDULING_TYPES:
        return None
    seq = ev.get("EventId")
    return seq if isinstance(seq, int) and seq >= 0 else None


def task_key(ev: Event) -> tuple[str, str]:
    kind = "activity" if ev["EventType"] == EventType.TASK_SCHEDULED else "sub-orchestration"
    return kind, str(ev.get("Name", "")).lower()


def result_text(ev: Event) -> str | None:
    """HTTP `Result` (parsed JSON) back to the JSON text the SDK expects; absent or null -> None."""
    value = ev.get("Result")
    return None if value is None else json.dumps(value)


def request_of(ev: Event) -> dict[str, Any]:
    """The entity request an EventSent carries; {} when its Input is not one."""
    return parse_request(ev.get("Input")) or {}
