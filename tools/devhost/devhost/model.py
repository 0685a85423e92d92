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


RetryKind = Literal["activity", "sub"]


@dataclass
class RetryState:
    """A `call_*_with_retry` in flight: the SDK does not say which attempt it is on, so the
    host keeps count (docs/durable-protocol.md §2.7). `current` is the sequence number of
    the attempt running now, `timer` the back-off timer between attempts (None: none)."""

    kind: RetryKind
    name: str
    input: Any
    iid: str | None  # sub-orchestrations: the instance id the user asked for
    first: int  # first retry interval, ms
    coef: float  # backoff coefficient
    max_interval: float | None  # ms
    max: int  # attempts in all
    attempt: int
    current: int
    timer: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "input": self.input,
            "iid": self.iid,
            "first": self.first,
            "coef": self.coef,
            "max_interval": self.max_interval,
            "max": self.max,
            "attempt": self.attempt,
            "current": self.current,
            "timer": self.timer,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetryState:
        return cls(
            kind=data["kind"],
            name=data.get("name") or "",
            input=data.get("input"),
            iid=data.get("iid"),
            first=int(data["first"]),
            coef=float(data["coef"]),
            max_interval=data.get("max_interval"),
            max=int(data["max"]),
            attempt=int(data["attempt"]),
            current=int(data["current"]),
            timer=None if data.get("timer") is None else int(data["timer"]),
        )


@dataclass
class EngineState:
    """The host-side bookkeeping the SDK does not return, checkpointed with the history so a
    restart resumes exactly. Stored as a JSON object holding only the fields that are set
    (the sentinel's `Engine` column on Azure Storage), with the same keys as these fields."""

    # Orchestrations:
    next_id: int = 0  # the next sequence number to hand out (what the SDK's task ids count)
    ids: list[int | None] = field(default_factory=list)  # per action position: its sequence number (None: a wait)
    played: int = 0  # history events before this position are marked IsPlayed
    last_os: str | None = None  # timestamp of the last OrchestratorStarted (episodes never go back in time)
    msgs: list[str] = field(default_factory=list)  # ids of the last client messages applied (dedup)
    rewound: list[int] = field(default_factory=list)  # sequence numbers a rewind erased, to schedule again
    retries: dict[int, RetryState] = field(default_factory=dict)  # by the first attempt's sequence number
    warned: list[str] = field(default_factory=list)  # warnings about the user's code already logged (once each)
    # Entities:
    handled: list[str] = field(default_factory=list)  # ids of the last requests applied (dedup)
    # Messages to other instances derived from results that were only in memory: checkpointed with
    # those results before they are sent, sent again after a crash (see `Dispatcher._process_group`).
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.next_id:
            out["next_id"] = self.next_id
        if self.ids:
            out["ids"] = self.ids
        if self.played:
            out["played"] = self.played
        if self.last_os is not None:
            out["last_os"] = self.last_os
        if self.msgs:
            out["msgs"] = self.msgs
        if self.rewound:
            out["rewound"] = self.rewound
        if self.retries:
            out["retries"] = {str(seq): r.to_json() for seq, r in self.retries.items()}
        if self.warned:
            out["warned"] = self.warned
        if self.handled:
            out["handled"] = self.handled
        if self.outbox:
            out["outbox"] = self.outbox
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineState:
        return cls(
            next_id=int(data.get("next_id") or 0),
            ids=list(data.get("ids") or []),
            played=int(data.get("played") or 0),
            last_os=data.get("last_os"),
            msgs=list(data.get("msgs") or []),
            rewound=list(data.get("rewound") or []),
            retries={int(seq): RetryState.from_json(r) for seq, r in (data.get("retries") or {}).items()},
            warned=list(data.get("warned") or []),
            handled=list(data.get("handled") or []),
            outbox=list(data.get("outbox") or []),
        )

    def copy(self) -> EngineState:
        return EngineState(
            self.next_id,
            list(self.ids),
            self.played,
            self.last_os,
            list(self.msgs),
            list(self.rewound),
            {k: copy.copy(r) for k, r in self.retries.items()},
            list(self.warned),
            list(self.handled),
            list(self.outbox),
        )


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
    engine: EngineState = field(default_factory=EngineState)
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
        out.engine = self.engine.copy()
        return out


@dataclass(frozen=True)
class Receipt:
    """What a store needs to delete or re-hide a message it handed out (its pop receipt)."""

    queue: str
    message_id: str
    pop_receipt: str = ""


Origin = Literal["queue", "local", "own"]


@dataclass
class Message:
    """A queued message: a history event addressed to an instance (control queue) or an
    activity to run (work queue, `event` is the TaskScheduled event).

    `execution_id` None means "whatever execution is current" (client events, entity
    requests). `sender` lets the receiver tell entity responses from client events.

    Where a message came from decides how it is settled (see `origin`): a message received
    from a store carries the store's `receipt` (ack/abandon it there); an activity result
    handed straight to its orchestration in this process carries `answers`, the work item
    it answers (acked once the result is checkpointed); work this process scheduled itself
    has neither (it exists only as a TaskScheduled event until done).
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
    receipt: Receipt | None = None
    # Set on an activity result that never went through a queue: the work item it answers.
    answers: Message | None = None

    @property
    def origin(self) -> Origin:
        if self.answers is not None:
            return "local"
        return "own" if self.receipt is None else "queue"

    def to_json(self) -> dict[str, Any]:
        """What an outbox keeps of a message to send (see `EngineState.outbox`)."""
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "event": self.event,
            "queue": self.queue,
            "execution_id": self.execution_id,
            "sender": self.sender,
            "visible_at": None if self.visible_at is None else self.visible_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        visible_at = data.get("visible_at")
        return cls(
            data["instance_id"],
            data["event"],
            queue=data.get("queue", "control"),
            execution_id=data.get("execution_id"),
            sender=data.get("sender"),
            id=data["id"],
            visible_at=None if visible_at is None else datetime.fromisoformat(visible_at),
        )

    @property
    def is_local(self) -> bool:
        """An in-process activity result: held only in memory until it is checkpointed."""
        return self.answers is not None
