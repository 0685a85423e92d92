"""An in-memory task hub: fast tests and virtual time. Same contract as Azure Storage."""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..clock import Clock, SystemClock
from ..model import Instance, Message, Queue, Receipt
from .base import ConcurrencyError, InstanceQuery, QueryPage


class _MemoryQueue:
    def __init__(self) -> None:
        self.ready: deque[Message] = deque()
        self.delayed: list[tuple[datetime, int, Message]] = []
        self.inflight: dict[str, tuple[Message, datetime]] = {}
        self.seq = itertools.count()

    def put(self, msg: Message, now: datetime) -> None:
        if msg.visible_at is not None and msg.visible_at > now:
            heapq.heappush(self.delayed, (msg.visible_at, next(self.seq), msg))
        else:
            self.ready.append(msg)

    def promote(self, now: datetime) -> None:
        while self.delayed and self.delayed[0][0] <= now:
            self.ready.append(heapq.heappop(self.delayed)[2])
        if self.inflight:
            expired = [r for r, (_, deadline) in self.inflight.items() if deadline <= now]
            for receipt in expired:
                msg, _ = self.inflight.pop(receipt)
                self.ready.append(msg)

    def depth(self) -> int:
        return len(self.ready) + len(self.delayed) + len(self.inflight)


class MemoryStore:
    """Everything lives in dicts and deques; copies go in and out so callers cannot
    change stored state without a checkpoint (as with a real store)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._instances: dict[str, Instance] = {}
        self._etags = itertools.count(1)
        self._queues: dict[str, _MemoryQueue] = {"control": _MemoryQueue(), "work": _MemoryQueue()}
        self._receipts = itertools.count(1)
        self.changed = asyncio.Event()
        self.poisoned: list[Message] = []

    # ------------------------------------------------------------ instances
    async def load(self, instance_id: str, *, history: bool = True) -> Instance | None:
        inst = self._instances.get(instance_id)
        return None if inst is None else inst.copy(history)

    def _check(self, inst: Instance) -> None:
        current = self._instances.get(inst.instance_id)
        if (current.etag if current else None) != inst.etag:
            raise ConcurrencyError(f"instance {inst.instance_id!r} was changed by someone else")

    async def create(self, instance: Instance) -> None:
        self._check(instance)
        instance.etag = str(next(self._etags))
        self._instances[instance.instance_id] = instance.copy()

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        self._check(instance)
        instance.etag = str(next(self._etags))
        self._instances[instance.instance_id] = instance.copy()

    async def query(self, query: InstanceQuery) -> QueryPage:
        matches = sorted(
            (i for i in self._instances.values() if query.matches(i)), key=lambda i: (i.created_time, i.instance_id)
        )
        start = int(query.continuation or 0)
        page = matches[start : start + query.page_size]
        more = start + query.page_size < len(matches)
        return QueryPage([i.copy(history=False) for i in page], str(start + query.page_size) if more else None)

    async def unfinished(self) -> list[str]:
        return [
            iid for iid, inst in self._instances.items() if not inst.runtime_status.is_terminal or inst.engine.outbox
        ]

    async def purge(self, instance_id: str) -> int:
        return 1 if self._instances.pop(instance_id, None) is not None else 0

    # --------------------------------------------------------------- queues
    async def enqueue(self, messages: Sequence[Message]) -> None:
        now = self.clock.now()
        for msg in messages:
            self._queues[msg.queue].put(copy.copy(msg), now)
        self.changed.set()

    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        q = self._queues[queue]
        now = self.clock.now()
        q.promote(now)
        out: list[Message] = []
        deadline = now + timedelta(seconds=visibility_seconds)
        while q.ready and len(out) < max_count:
            msg = q.ready.popleft()
            msg.dequeue_count += 1
            receipt = Receipt(queue, str(next(self._receipts)))
            q.inflight[receipt.message_id] = (msg, deadline)
            received = copy.copy(msg)
            received.receipt = receipt
            out.append(received)
        return out

    async def ack(self, messages: Sequence[Message]) -> None:
        for msg in messages:
            if msg.receipt is not None:
                self._queues[msg.queue].inflight.pop(msg.receipt.message_id, None)

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        now = self.clock.now()
        for msg in messages:
            entry = self._queues[msg.queue].inflight.pop(msg.receipt.message_id, None) if msg.receipt else None
            if entry is None:
                continue
            stored = entry[0]
            stored.visible_at = now + timedelta(seconds=delay_seconds) if delay_seconds else None
            self._queues[msg.queue].put(stored, now)
        self.changed.set()

    async def poison(self, messages: Sequence[Message]) -> None:
        """Set aside messages that failed too often (kept for inspection, never redelivered)."""
        for msg in messages:
            entry = self._queues[msg.queue].inflight.pop(msg.receipt.message_id, None) if msg.receipt else None
            if entry is not None:
                self.poisoned.append(entry[0])

    async def next_visible_at(self, queue: Queue) -> datetime | None:
        q = self._queues[queue]
        times = [q.delayed[0][0]] if q.delayed else []
        times += [deadline for _, deadline in q.inflight.values()]
        return min(times) if times else None

    def forget(self, instance_id: str | None = None) -> None:
        """Nothing cached: every load reads the dicts."""

    def outage_ended(self) -> bool:
        return False

    async def resync(self) -> list[str]:
        return []

    async def depth(self, queue: Queue) -> int:
        return self._queues[queue].depth()

    async def acquire_hub_lease(self, lease_seconds: int = 30) -> None:
        """Nothing to take: a memory hub lives in this process only."""

    async def release_hub_lease(self) -> None:
        return None

    async def close(self) -> None:
        return None
