"""What the orchestrator did, in words: the one home for the phrases devhost shows people.

Nondeterminism errors (the engine), replay reports (`devhost.replay`) and logs all name the same things:
an action the SDK returned, a scheduling event the history recorded, an event delivered to the
orchestration, an outcome. They name them here, so a message reads the same wherever it appears.

Two forms: nouns (`action`, `scheduled`, `delivered`: "TaskScheduled 'charge'") for the engine's error
text, which follows DTFx's "history recorded X, but the orchestrator now produced Y", and verb phrases
(`did`: "scheduled activity 'charge'") for replay reports, which tell a story ("the recording scheduled
..., but the current code ...").
"""

from __future__ import annotations

import json
from typing import Any

from . import history as h
from .actions import (
    ACTIVITY_TYPES,
    ENTITY_TYPES,
    SUB_ORCHESTRATOR_TYPES,
    Action,
    ActionType,
    action_type,
)
from .entity_messages import parse_request, request_op
from .history import COMPLETION_ID_FIELD, ORCHESTRATION_STATUS_INT, Event, EventType, RuntimeStatus

_STATUS_NAMES: dict[int, str] = {num: status.value for status, num in ORCHESTRATION_STATUS_INT.items()}


def action(item: Action) -> str:
    """An SDK action as a noun: `CALL_ACTIVITY 'charge'`, `CREATE_TIMER at 2026-...`."""
    t = action_type(item)
    try:
        kind = ActionType(t).name
    except ValueError:
        kind = f"action {t}"
    if t in ACTIVITY_TYPES or t in SUB_ORCHESTRATOR_TYPES:
        return f"{kind} '{item.get('functionName')}'"
    if t in ENTITY_TYPES:
        return f"{kind} '{item.get('operation')}' on '{item.get('instanceId')}'"
    if t == ActionType.CREATE_TIMER:
        return f"{kind} at {item.get('fireAt')}"
    if t == ActionType.WAIT_FOR_EXTERNAL_EVENT:
        return f"{kind} '{item.get('externalEventName')}'"
    if t == ActionType.CALL_HTTP:
        req = item.get("httpRequest") or {}
        return f"{kind} {req.get('method')} {req.get('uri')}"
    return kind


def scheduled(ev: Event | None) -> str:
    """A recorded scheduling event as a noun: `TaskScheduled 'charge'`; None is `nothing`."""
    if ev is None:
        return "nothing"
    t = ev["EventType"]
    name = h.event_name(ev)
    if t in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED):
        return f"{name} '{ev.get('Name')}'"
    if t == EventType.EVENT_SENT:
        return f"{name} '{request_op(ev.get('Input'))}' to '{ev.get('InstanceId')}'"
    if t == EventType.TIMER_CREATED:
        return f"{name} at {ev.get('FireAt')}"
    return name


def delivered(ev: Event | None) -> str:
    """An event delivered to the orchestration, as a noun: `TaskCompleted for sequence number 3`."""
    if ev is None:
        return "more events"
    t = ev["EventType"]
    name = h.event_name(ev)
    if ev.get("FunctionName") and t != EventType.EXECUTION_STARTED:
        return f"{name} '{ev.get('FunctionName')}'"
    if t in COMPLETION_ID_FIELD and ev.get(COMPLETION_ID_FIELD[t]) is not None:
        return f"{name} for sequence number {ev.get(COMPLETION_ID_FIELD[t])}"
    if t == EventType.EVENT_RAISED:
        return f"{name} '{ev.get('Name')}'"
    return name


def did(ev: Event | None, in_episode: bool) -> str:
    """What an output event (scheduling or outcome) says the orchestrator did, as a verb phrase."""
    if ev is None:
        return "did nothing more in that episode" if in_episode else "did nothing more"
    t = ev["EventType"]
    if t == EventType.TASK_SCHEDULED:
        return f"scheduled activity '{ev.get('Name')}'"
    if t == EventType.SUB_ORCHESTRATION_CREATED:
        return f"started sub-orchestration '{ev.get('Name')}'"
    if t == EventType.TIMER_CREATED:
        return f"created a timer (fire at {ev.get('FireAt')})"
    if t == EventType.EVENT_SENT:
        req = parse_request(ev.get("Input")) or {}
        verb = "signalled" if req.get("signal") else "called"
        op = f" operation '{req.get('op')}'" if req else ""
        return f"{verb} entity{op} on '{ev.get('InstanceId')}'"
    if t == EventType.CONTINUE_AS_NEW:
        return f"continued as new with input {short(ev.get('Result'))}"
    if t == EventType.EXECUTION_COMPLETED:
        status = status_name(ev)
        if status == RuntimeStatus.COMPLETED.value:
            if "Result" not in ev:
                return "completed the orchestration"
            return f"completed the orchestration with output {short(ev.get('Result'))}"
        if status == RuntimeStatus.FAILED.value:
            return f"failed the orchestration: {short(ev.get('Result'), 400)}"
        return f"ended the orchestration as {status}"
    return h.event_name(ev)


def completion_verb(ev: Event) -> str:
    """`failed` for a failure event, `completed` for any other completion."""
    t = ev["EventType"]
    return "failed" if t in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED) else "completed"


def status_of(ev: Event) -> int | None:
    """An outcome event's OrchestrationStatus as the DTFx int, whether recorded as int or name."""
    status = ev.get("OrchestrationStatus")
    if isinstance(status, str):
        return {name: num for num, name in _STATUS_NAMES.items()}.get(status)
    return status if isinstance(status, int) else None


def status_name(ev: Event) -> str:
    """An outcome event's status as the HTTP API names it (`Completed`, `Failed`, ...)."""
    status = status_of(ev)
    return _STATUS_NAMES.get(status, str(status)) if status is not None else "?"


def short(value: Any, limit: int = 160) -> str:
    """A value on one line, cut to `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
