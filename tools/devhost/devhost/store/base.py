"""The task-hub store interface shared by the memory store and the Azure Storage store.

Durability rules live in the dispatcher, which calls these in DTFx's order: enqueue
outbound messages, then `checkpoint` (guarded by the instance's etag), then `ack` the
messages that were consumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..clock import Clock
from ..history import RuntimeStatus
from ..model import Instance, Message, Queue


class ConcurrencyError(Exception):
    """Someone else changed the instance since it was loaded (etag mismatch)."""


@dataclass
class InstanceQuery:
    runtime_status: Sequence[RuntimeStatus] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    name: str | None = None
    entities: bool | None = False  # False: orchestrations only; True: entities only; None: both (the HTTP list)
    page_size: int = 100
    continuation: str | None = None

    def matches(self, inst: Instance) -> bool:
        if self.entities is not None and inst.is_entity != self.entities:
            return False
        if self.runtime_status and inst.runtime_status not in self.runtime_status:
            return False
        if self.created_from and inst.created_time < self.created_from:
            return False
        if self.created_to and inst.created_time > self.created_to:
            return False
        if self.instance_id_prefix and not inst.instance_id.startswith(self.instance_id_prefix):
            return False
        if self.name and inst.name.lower() != self.name.lower():
            return False
        return True


@dataclass
class QueryPage:
    instances: list[Instance] = field(default_factory=list)
    continuation: str | None = None


class Store(Protocol):
    """Everything the dispatcher, the server and the client call on a task hub."""

    clock: Clock
    # Set whenever a message becomes visible at once (a send by this process): an idle
    # dispatcher waits on it instead of polling. The dispatcher clears it before receiving.
    changed: asyncio.Event

    async def load(self, instance_id: str, *, history: bool = True) -> Instance | None:
        """The instance with its current execution's history and an etag, or None."""

    async def create(self, instance: Instance) -> None:
        """Insert a new instance record, or replace the one with `instance.etag`.

        Raises ConcurrencyError if the record changed (or appeared) meanwhile."""

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        """Persist the instance; `history[new_events_from:]` are the events not yet stored.

        Guarded by `instance.etag` (None: the record must not exist yet); sets the new
        etag on success; raises ConcurrencyError otherwise."""

    async def enqueue(self, messages: Sequence[Message]) -> None:
        """Make messages visible at their `visible_at` (now if None)."""

    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        """Receive up to `max_count` visible messages, hidden from others until acked or the
        visibility timeout passes (then they come back: at-least-once)."""

    async def ack(self, messages: Sequence[Message]) -> None:
        """Delete received messages."""

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        """Make received messages visible again after a delay."""

    async def poison(self, messages: Sequence[Message]) -> None:
        """Move received messages that keep failing aside (a poison queue), never redelivered."""

    async def next_visible_at(self, queue: Queue) -> datetime | None:
        """When the earliest not-yet-visible message becomes visible (timers), if known."""

    def forget(self, instance_id: str | None = None) -> None:
        """Drop cached copies (of one instance, or all) so the next `load` reads storage: after a
        conflicting or failed checkpoint, or when storage may have lost acknowledged writes."""

    def outage_ended(self) -> bool:
        """True once after storage failed to answer (and was retried) since the last call: a storage
        restart may have lost writes it acknowledged, so callers resume from what it holds."""

    async def resync(self) -> list[str]:
        """After an outage: make storage hold at least what this store wrote and acknowledged (a
        restarted Azurite can lose both), writing back the instances it lost or holds older; returns
        their ids. Then every cached copy is dropped. Nothing to do in memory."""

    async def depth(self, queue: Queue) -> int:
        """How many messages (visible or not) the queue holds; approximate on Azure Storage."""

    async def acquire_hub_lease(self, lease_seconds: int = 30) -> None:
        """Become the only host on this hub (HubInUse otherwise); renewed until released.
        A no-op where no other process can share the hub (memory)."""

    async def release_hub_lease(self) -> None:
        """Give the hub up (no-op if not held)."""

    async def query(self, query: InstanceQuery) -> QueryPage:
        """Instances matching the filter, a page at a time (no history)."""

    async def unfinished(self) -> list[str]:
        """Ids of instances not in a terminal state, or with messages still in their outbox (read at
        host start to re-run their work)."""

    async def purge(self, instance_id: str) -> int:
        """Delete an instance and its history; returns how many were deleted (0 or 1)."""

    async def close(self) -> None: ...
