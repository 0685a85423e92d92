"""Two outward views of an instance's history: the Durable HTTP API's and devhost's own export.

`to_http_history` renders the simplified `historyEvents` list that `GET instances/{id}?showHistory=true`
returns (docs/durable-protocol.md §6.3). It follows the extension's `DurableClient.GetDurableOrchestrationStatusAsync`
so that tools written against Azure (dashboards, scripts, the replay checker's HTTP mode) see the
same shapes locally: including the lossy parts (scheduling events folded into their completions,
sequence numbers dropped).

`export_instance` is the opposite: a lossless dump of the current execution, in the exact DTFx event
shape the store keeps, so a recorded history can be replayed against new code with full fidelity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from .history import (
    EVENT_NAMES,
    EVENT_TYPES_BY_NAME,
    ORCHESTRATION_STATUS_INT,
    Event,
    EventType,
)

# DTFx OrchestrationStatus ints -> names (as the HTTP API and Azure Tables spell them).
ORCHESTRATION_STATUS_NAMES: dict[int, str] = {num: status.value for status, num in ORCHESTRATION_STATUS_INT.items()}

# Completion type -> the scheduling type it is folded into.
_SCHEDULED_BY: dict[int, int] = {
    EventType.TASK_COMPLETED: EventType.TASK_SCHEDULED,
    EventType.TASK_FAILED: EventType.TASK_SCHEDULED,
    EventType.SUB_ORCHESTRATION_COMPLETED: EventType.SUB_ORCHESTRATION_CREATED,
    EventType.SUB_ORCHESTRATION_FAILED: EventType.SUB_ORCHESTRATION_CREATED,
}
# Events whose `Result` is an output (hidden unless showHistoryOutput, then parsed as JSON).
_OUTPUT_TYPES = frozenset(
    {EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED, EventType.EXECUTION_COMPLETED}
)


def event_type_of(event: Event) -> int:
    """The event's type as the DTFx int, whether it is stored as an int, a numeric string or a name.

    Recordings come from several places (our store, the Azure Storage history table, hand-written
    fixtures) and they disagree on how to spell the type; everything downstream wants the int.
    """
    raw = event.get("EventType")
    if isinstance(raw, bool):
        raise ValueError(f"invalid EventType {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if text in EVENT_TYPES_BY_NAME:
            return EVENT_TYPES_BY_NAME[text]
    raise ValueError(f"unknown EventType {raw!r}")


def parse_json_token(text: Any) -> Any:
    """The extension's `ParseToJToken`: JSON text to a value; text that is not JSON stays text.

    Failure reasons and termination reasons are plain strings, so a failed parse is expected, not
    an error. Values that are not strings (already parsed) pass through unchanged.
    """
    if not isinstance(text, str):
        return text
    value = text.strip()
    if not value:
        return ""
    try:
        return json.loads(value)
    except ValueError:
        return value


def to_http_history(events: Iterable[Event], *, show_input: bool, show_output: bool) -> list[dict[str, Any]]:
    """The HTTP API's simplified `historyEvents` for one execution's DTFx history (docs/durable-protocol.md §6.3).

    * `EventType` becomes its name; OrchestratorStarted/OrchestratorCompleted are removed.
    * A TaskScheduled / SubOrchestrationInstanceCreated that has a completion is removed and merged into
      the completion as `FunctionName` + `ScheduledTime` (+ `Input` when `show_input`); completions lose
      `TaskScheduledId`. Scheduling events without a completion stay (minus `Version`, as the extension
      does).
    * `Result` of TaskCompleted, SubOrchestrationInstanceCompleted and ExecutionCompleted is present only
      with `show_output`, parsed as JSON (text that is not JSON, like a failure reason, stays text).
    * ExecutionStarted: `Name` -> `FunctionName`; `OrchestrationInstance`, `ParentInstance`, `Version`,
      `Tags` removed. ExecutionCompleted: `OrchestrationStatus` as a name. TimerFired loses `TimerId`.
    * Every event loses `EventId` and `IsPlayed`, and `Input` unless `show_input`.

    The input events are not modified.
    """
    items: list[dict[str, Any] | None] = []
    # (scheduling type, sequence number) -> (index in items, the original scheduling event)
    scheduled: dict[tuple[int, Any], tuple[int, Event]] = {}
    for ev in events:
        t = event_type_of(ev)
        if t in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            continue
        item: dict[str, Any] = dict(ev)
        item["EventType"] = EVENT_NAMES.get(t, str(t))
        if t in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED):
            scheduled[(t, ev.get("EventId"))] = (len(items), ev)
            item.pop("Version", None)
        elif t in _SCHEDULED_BY:
            found = scheduled.pop((_SCHEDULED_BY[t], ev.get("TaskScheduledId")), None)
            item.pop("TaskScheduledId", None)
            if found is not None:
                index, source = found
                items[index] = None
                item["ScheduledTime"] = source.get("Timestamp")
                item["FunctionName"] = source.get("Name")
                if show_input:
                    item["Input"] = source.get("Input")
        elif t == EventType.EXECUTION_STARTED:
            name = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
            item["FunctionName"] = name
        elif t == EventType.EXECUTION_COMPLETED:
            status = item.get("OrchestrationStatus")
            if isinstance(status, int) and not isinstance(status, bool):
                item["OrchestrationStatus"] = ORCHESTRATION_STATUS_NAMES.get(status, str(status))
        elif t == EventType.TIMER_FIRED:
            item.pop("TimerId", None)
        if t in _OUTPUT_TYPES:
            if show_output:
                item["Result"] = parse_json_token(item.get("Result"))
            else:
                item.pop("Result", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
        if not show_input:
            item.pop("Input", None)
        items.append(item)
    return [item for item in items if item is not None]


class InstanceLike(Protocol):
    """What `export_instance` reads: a store `Instance` or the harness's `OrchestrationStatus`."""

    @property
    def instance_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def history(self) -> list[Event]: ...


EXPORT_KEYS = ("instanceId", "name", "executionId", "input", "history")


def export_instance(instance: InstanceLike) -> dict[str, Any]:
    """The store's own full-fidelity export of the current execution.

    `{"instanceId", "name", "executionId", "input", "history"}` where `history` holds the DTFx events
    exactly as stored (int EventType, EventId, IsPlayed, every field), and `input` is the execution's
    input JSON text. This is what `python -m devhost replay` and `assert_replays` read best: it keeps the
    episode boundaries and sequence numbers that the HTTP view loses.
    """
    history = [dict(ev) for ev in instance.history]
    started = next((ev for ev in history if event_type_of(ev) == EventType.EXECUTION_STARTED), None)
    execution_id = getattr(instance, "execution_id", None)
    if started is not None:
        execution_id = execution_id or (started.get("OrchestrationInstance") or {}).get("ExecutionId")
        input_text = started.get("Input")
    else:
        raw = getattr(instance, "input", None)
        input_text = raw if isinstance(raw, str) or raw is None else json.dumps(raw)
    return {
        "instanceId": instance.instance_id,
        "name": instance.name,
        "executionId": execution_id,
        "input": input_text,
        "history": history,
    }
