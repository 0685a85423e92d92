"""Shared helpers for the SDK feature tests: a harness on the feature app, history queries.

Tests internals (not devhost's public API): imports `devhost.harness`, `devhost.history`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from devhost.harness import DurableHarness, OrchestrationStatus
from devhost.history import EVENT_NAMES, EVENT_TYPES_BY_NAME, parse_ts

from .apps.feature_app import app

Event = dict[str, Any]


def new_harness() -> Iterator[DurableHarness]:
    """Body of each test module's `harness` fixture: memory hub, virtual time, closed afterwards."""
    with DurableHarness(app) as harness:
        yield harness


def events(status: OrchestrationStatus, name: str) -> list[Event]:
    """The history events of one kind, e.g. events(status, "TaskScheduled")."""
    wanted = EVENT_TYPES_BY_NAME[name]
    return [ev for ev in status.history if ev["EventType"] == wanted]


def kinds(status: OrchestrationStatus, *, framing: bool = False) -> list[str]:
    """Event names in history order, without the OrchestratorStarted/Completed framing by default."""
    skip = set() if framing else {"OrchestratorStarted", "OrchestratorCompleted"}
    names = [EVENT_NAMES[ev["EventType"]] for ev in status.history]
    return [n for n in names if n not in skip]


def scheduled(status: OrchestrationStatus) -> list[tuple[int, str]]:
    """(sequence number, what) for every scheduling event, in history order."""
    out = []
    for ev in status.history:
        kind = EVENT_NAMES[ev["EventType"]]
        if kind in ("TaskScheduled", "SubOrchestrationInstanceCreated"):
            out.append((ev["EventId"], f"{kind} {ev['Name']}"))
        elif kind in ("TimerCreated", "EventSent"):
            out.append((ev["EventId"], kind))
    return out


def episode_start_before(status: OrchestrationStatus, event: Event) -> datetime:
    """Timestamp of the OrchestratorStarted that opened the episode holding `event`."""
    position = next(i for i, ev in enumerate(status.history) if ev is event)
    started = EVENT_TYPES_BY_NAME["OrchestratorStarted"]
    for ev in reversed(status.history[:position]):
        if ev["EventType"] == started:
            return parse_ts(ev["Timestamp"])
    raise AssertionError("no OrchestratorStarted before the event")


def execution_id(status: OrchestrationStatus) -> str:
    started = events(status, "ExecutionStarted")
    assert len(started) == 1
    return str(started[0]["OrchestrationInstance"]["ExecutionId"])


def sdk_uuid(instance_id: str, when: datetime, counter: int) -> str:
    """`context.new_uuid()` as the SDK computes it (docs/durable-protocol.md §1.5)."""
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
    return str(uuid.uuid5(namespace, f"{instance_id}_{when:%Y-%m-%dT%H:%M:%S.%fZ}_{counter}"))
