"""The records a task hub stores: instances and the messages between them.

Both stores (memory and Azure Storage) persist exactly these, so the engine never
needs to know which one it runs on.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .history import Event, RuntimeStatus

Queue = Literal["control", "work"]


def new_guid() -> str:
    """A 32-hex id, like DTFx's `Guid.ToString("N")` for instance and execution ids."""
    return uuid.uuid4().hex


def is_entity_id(instance_id: str) -> bool:
    return instance_id.startswith("@")


@dataclass
class Instance:
    """One orchestration (or entity) instance: status fields plus the current execution's history.

    `engine` holds the host-side bookkeeping the SDK does not return (next sequence
    number, how many actions were already dispatched, retries in flight); it is
    checkpointed together with the history so a restart resumes exactly.
    """

    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    execution_id: str
    created_time: datetime
    last_updated_time: datetime
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    completed_time: datetime | None = None
    parent_instance_id: str | None = None
    history: list[Event] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    buffered: list[Event] = field(default_factory=list)
    generation: int = 0
    # Entities only: whether state exists, and the state as JSON text.
    entity_exists: bool = False
    entity_state: str | None = None
    etag: str | None = None

    @property
    def is_entity(self) -> bool:
        return is_entity_id(self.instance_id)

    def copy(self, history: bool = True) -> Instance:
        """A copy safe to hand out: stores keep their own, and callers may change theirs.

        History events are shared, not copied: the engine never mutates a stored event
        (it replaces it), so copying the list is enough."""
        out = copy.copy(self)
        out.history = list(self.history) if history else []
        out.buffered = list(self.buffered)
        out.engine = copy.deepcopy(self.engine)
        return out


@dataclass
class Message:
    """A queued message: a history event addressed to an instance (control queue) or an
    activity to run (work queue, `event` is the TaskScheduled event).

    `execution_id` None means "whatever execution is current" (client events, entity
    requests). `sender` lets the receiver tell entity responses from client events.
    """

    instance_id: str
    event: Event
    queue: Queue = "control"
    execution_id: str | None = None
    visible_at: datetime | None = None
    sender: str | None = None
    id: str = field(default_factory=new_guid)
    # Set by the store on receive.
    dequeue_count: int = 0
    receipt: Any = None
