"""Builders for testing the pure orchestration step on built histories (tests of internals).

Modelled on durabletask-python's tests/durabletask/test_orchestration_executor.py: small
constructors for the events a host delivers, a `Step` that feeds them through
`process_orchestration` with an explicit clock, and readers for what came out (the new
history events, the outbound messages, what was dropped or deferred). Nothing runs but the
real SDK's orchestrator code: activities, children and entities are never called, their
results are built here.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.index`, `devhost.model`,
`devhost.orchestration`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost import history as h
from devhost.history import EVENT_NAMES, Event, EventType
from devhost.index import AppIndex
from devhost.model import Instance, Message
from devhost.orchestration import EngineOptions, StepResult, process_orchestration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IID = "step-instance"


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# ------------------------------------------------------------------ delivered events
def started(
    name: str,
    value: Any = None,
    *,
    iid: str = IID,
    execution_id: str = "exec-1",
    at: datetime = T0,
    parent: dict[str, Any] | None = None,
) -> Message:
    """ExecutionStarted as the SDK's client sends it: the input is JSON text encoded again as a string."""
    text = _text(value)
    ev = h.execution_started(
        at,
        instance_id=iid,
        execution_id=execution_id,
        name=name,
        input_text=None if text is None else json.dumps(text),
        parent=parent,
    )
    return Message(iid, ev, execution_id=execution_id)


def completed(task_id: int, value: Any = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.task_completed(at, task_id, _text(value)), sender=iid)


def failed(task_id: int, reason: str = "it broke", *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.task_failed(at, task_id, reason, None), sender=iid)


def child_completed(task_id: int, value: Any = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.sub_orchestration_completed(at, task_id, _text(value)), sender="child")


def fired(timer_id: int, fire_at: datetime, *, iid: str = IID) -> Message:
    return Message(iid, h.timer_fired(fire_at, timer_id, fire_at), sender=iid)


def raised(name: str, value: Any = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.event_raised(at, name, _text(value)))


def entity_reply(request_id: str, value: Any, *, entity: str, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.event_raised(at, request_id, json.dumps({"result": _text(value)})), sender=entity)


def suspend(reason: str | None = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.execution_suspended(at, reason))


def resume(reason: str | None = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.execution_resumed(at, reason))


def terminate(reason: str | None = None, *, iid: str = IID, at: datetime = T0) -> Message:
    return Message(iid, h.execution_terminated(at, reason))


# ------------------------------------------------------------------------- the step
class Step:
    """One instance driven through the pure step; keeps the instance between calls."""

    def __init__(self, app: Any, *, now: datetime = T0) -> None:
        self.index = app if isinstance(app, AppIndex) else AppIndex.from_app(app)
        self.now = now
        self.instance: Instance | None = None
        self.last: StepResult | None = None
        self._ids = iter(f"exec-{n}" for n in range(2, 1000))
        self.options = EngineOptions(new_id=lambda: next(self._ids))

    def __call__(self, *messages: Message, after: timedelta = timedelta(0)) -> StepResult:
        """Deliver `messages` in one work item, `after` later than the previous one."""
        self.now += after
        result = process_orchestration(self.index, self.instance, list(messages), self.now, self.options)
        self.instance = result.instance
        self.last = result
        return result

    @property
    def inst(self) -> Instance:
        assert self.instance is not None
        return self.instance


def new_events(result: StepResult) -> list[Event]:
    """The history events this step appended (all of them after a reset)."""
    assert result.instance is not None
    return result.instance.history[result.new_events_from :]


def names(events: list[Event], *, framing: bool = False) -> list[str]:
    skip = set() if framing else {EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED}
    return [EVENT_NAMES[ev["EventType"]] for ev in events if ev["EventType"] not in skip]


def scheduled(events: list[Event]) -> list[tuple[int, str]]:
    """(sequence number, what) for each scheduling event, e.g. (0, "TaskScheduled say_hello")."""
    out = []
    for ev in events:
        if ev["EventType"] in h.SCHEDULING_TYPES:
            label = EVENT_NAMES[ev["EventType"]]
            if ev["EventType"] in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED):
                label += f" {ev['Name']}"
            out.append((ev["EventId"], label))
    return out


def work(result: StepResult) -> list[tuple[int, str]]:
    """The activities this step asked to run: (sequence number, activity name)."""
    return [(m.event["EventId"], m.event["Name"]) for m in result.outbound if m.queue == "work"]


def timers(result: StepResult) -> list[tuple[int, datetime]]:
    """The timer messages this step sent: (timer id, when it becomes visible)."""
    return [
        (m.event["TimerId"], m.visible_at)
        for m in result.outbound
        if m.event["EventType"] == EventType.TIMER_FIRED and m.visible_at is not None
    ]


def reasons(result: StepResult) -> list[str]:
    return [why for _msg, why in result.dropped]
