"""The `Store` protocol on Azure Storage (or Azurite): the facade over the hub's tables, queues,
blobs and lease (DTFx's `AzureStorageOrchestrationService`). Create it with `open_store`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError, ServiceRequestError

from ...clock import Clock, SystemClock
from ...history import EventType
from ...model import Instance, Message, Queue
from ..base import ConcurrencyError, InstanceQuery, QueryPage
from .blobs import LargeMessages
from .connection import Endpoints, StorageUnavailable, clients, probe, retried_failures
from .history_table import HistoryTable
from .instances_table import InstancesTable
from .layout import HubLayout, check_hub_name, sanitize_key
from .lease import LEASE_SECONDS, HubLease
from .queues import HubQueues
from .resources import HubResourcesMissing, missing_resource

log = logging.getLogger("devhost.store")
T = TypeVar("T")
# After recreating the hub's resources, requests already under way fail once more: not again so soon.
_RECREATE_AGAIN_SECONDS = 2.0
_STARTS_KEPT = 2048


class AzureStorageStore:
    """The `Store` protocol on Azure Storage. Create it with `open_store`."""

    def __init__(self, endpoints: Endpoints, hub: str, *, clock: Clock | None = None, partition_count: int = 4):
        self.clock: Clock = clock or SystemClock()
        self.hub = hub
        self.partition_count = partition_count
        self.layout = HubLayout(hub, partition_count)
        self._endpoints = endpoints
        self.lease = HubLease(endpoints.blobs, self.layout)
        self.blobs = LargeMessages(endpoints.blobs.get_container_client(self.layout.large_messages_container))
        self.history = HistoryTable(
            endpoints.tables.get_table_client(self.layout.history_table),
            self.blobs,
            self.clock,
            lambda: self.lease.held,
        )
        self.instances = InstancesTable(
            endpoints.tables.get_table_client(self.layout.instances_table),
            self.blobs,
            self.clock,
            hub,
            self.history.sentinel,
        )
        self.queues = HubQueues(endpoints.queues, self.layout, self.blobs, self.clock, lambda: self.lease.held)
        # Set when this store sends a message visible at once: wakes an idle dispatcher.
        self.changed: asyncio.Event = self.queues.changed
        self._failures_seen = retried_failures()
        self._recreating = asyncio.Lock()
        self._recreated_at = -_RECREATE_AGAIN_SECONDS
        self._recreations = 0  # how many times the hub's resources were found missing and recreated
        self._recreations_seen = 0
        # Top-level start messages this store sent whose instance has not started yet (no history
        # checkpointed): a Pending row can be written back from the cache, but its start message
        # lives only in a queue, and nothing else could send it again (`resync`).
        self._starts: OrderedDict[str, Message] = OrderedDict()

    async def create_resources(self) -> None:
        async def table(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.tables.create_table(name)

        async def container(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.blobs.create_container(name)

        await asyncio.gather(
            table(self.layout.instances_table),
            table(self.layout.history_table),
            self.queues.create(),
            container(self.layout.large_messages_container),
            container(self.layout.leases_container),
        )

    async def _recreate(self, code: str) -> None:
        """The hub's resources went missing (storage restarted without them, or they were deleted):
        create them again, once for the requests failing together."""
        async with self._recreating:
            if time.monotonic() - self._recreated_at < _RECREATE_AGAIN_SECONDS:
                return
            await self.create_resources()
            self._recreated_at = time.monotonic()
            self._recreations += 1
        log.warning(
            "devhost: task hub %s was missing from storage (%s; a restarted Azurite that had not saved "
            "it?): recreated its tables, queues and containers; instances this host holds in its cache "
            "are written back, any others are gone",
            self.hub,
            code,
        )

    async def _guarded(self, call: Callable[[], Awaitable[T]], *, retry: bool) -> T:
        """`call()`; if storage says a hub resource is missing, recreate the hub's resources, then
        call again (`retry`: requests that are safe to repeat) or raise `HubResourcesMissing` (a
        checkpoint: its etag no longer matches anything; the dispatcher resumes from storage)."""
        try:
            return await call()
        except Exception as exc:
            code = missing_resource(exc)
            if code is None:
                raise
            await self._recreate(code)
            if not retry:
                raise HubResourcesMissing(f"task hub {self.hub} was missing from storage ({code}); recreated") from exc
        return await call()

    async def close(self) -> None:
        await self.instances.flush()
        await self.lease.release()
        await self.queues.close()
        closing: list[Any] = [
            self.instances.table,
            self.history.table,
            self.blobs.container,
            self._endpoints.tables,
            self._endpoints.queues,
            self._endpoints.blobs,
        ]
        for client in closing:
            with contextlib.suppress(Exception):
                await client.close()
        if self._endpoints.credential is not None:
            with contextlib.suppress(Exception):
                await self._endpoints.credential.close()

    # ------------------------------------------------------------------ lease
    async def acquire_hub_lease(self, lease_seconds: int = LEASE_SECONDS) -> None:
        await self.lease.acquire(lease_seconds)

    async def release_hub_lease(self) -> None:
        await self.lease.release()

    # -------------------------------------------------------------- instances
    async def load(self, instance_id: str, *, history: bool = True) -> Instance | None:
        return await self._guarded(lambda: self.history.load(instance_id, history=history), retry=True)

    async def create(self, instance: Instance) -> None:
        # A dispatcher (here or in another process) may checkpoint the instance before its Pending
        # row reaches the Instances table: that row is written from what the sentinel holds then
        # (`InstancesTable.index_later(verify=...)`), so the query index never keeps an older
        # Pending over a newer state. DTFx gets the same by inserting its Pending row only if
        # none exists (`AzureTableTrackingStore.SetNewExecutionAsync`: InsertEntityAsync, or
        # ReplaceEntityAsync with the loaded ETag; a 409/412 is ignored).
        await self._checkpoint(instance, 0, True, verify_index=True)

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        await self._checkpoint(instance, new_events_from, history_reset, verify_index=False)

    async def _checkpoint(
        self, instance: Instance, new_events_from: int, history_reset: bool, *, verify_index: bool
    ) -> None:
        sentinel = await self._guarded(
            lambda: self.history.write(instance, new_events_from, history_reset), retry=False
        )
        if instance.history:
            self._starts.pop(instance.instance_id, None)
        self.instances.index_later(instance, sentinel, verify=verify_index)

    async def flush_index(self) -> None:
        await self.instances.flush()

    async def query(self, query: InstanceQuery) -> QueryPage:
        return await self._guarded(lambda: self.instances.query(query), retry=True)

    async def unfinished(self) -> list[str]:
        return await self._guarded(self._unfinished, retry=True)

    async def _unfinished(self) -> list[str]:
        """From the sentinels (written with each checkpoint), not the lazily written Instances rows.

        Read at host start, so it also repairs the query index: a host that died between a
        checkpoint and its Instances-row write leaves a row that still says Running."""
        await self.instances.flush()
        ids = await self.history.unfinished()
        running = set(ids)
        stale = [pk for pk in await self.instances.active_partitions() if pk not in running]
        # Entities too (their rows are written as lazily): a listing must not show a lock that
        # the entity itself released before the host died.
        listed = await self.instances.entity_stamps()
        stale += [pk for pk, held in (await self.history.entity_stamps()).items() if listed.get(pk) != held]
        for pk in stale:
            with contextlib.suppress(ResourceNotFoundError):
                await self.instances.upsert(await self.history.sentinel(pk))
        if stale:
            log.info("devhost: repaired %d stale Instances row(s)", len(stale))
        return ids

    async def purge(self, instance_id: str) -> int:
        await self.instances.flush()
        pk = sanitize_key(instance_id)
        self.history.forget(instance_id)
        self._starts.pop(instance_id, None)
        existed = await self._guarded(lambda: self.history.delete_partition(pk), retry=True)
        existed = await self.instances.delete(pk) or existed
        await self.blobs.delete(await self.blobs.names_under(pk + "/"))
        return 1 if existed else 0

    # ----------------------------------------------------------------- queues
    async def enqueue(self, messages: Sequence[Message]) -> None:
        await self._guarded(lambda: self.queues.enqueue(messages), retry=True)  # receivers drop duplicates
        for m in messages:
            if m.event.get("EventType") == EventType.EXECUTION_STARTED and not m.event.get("ParentInstance"):
                self._starts[m.instance_id] = m
                self._starts.move_to_end(m.instance_id)
                while len(self._starts) > _STARTS_KEPT:
                    self._starts.popitem(last=False)

    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        return await self._guarded(lambda: self.queues.dequeue(queue, max_count, visibility_seconds), retry=True)

    async def ack(self, messages: Sequence[Message]) -> None:
        await self.queues.ack(messages)

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        await self.queues.abandon(messages, delay_seconds)

    async def poison(self, messages: Sequence[Message]) -> None:
        await self._guarded(lambda: self.queues.poison(messages), retry=True)

    async def next_visible_at(self, queue: Queue) -> datetime | None:
        """Unknown without peeking at every delayed message: the dispatcher polls instead."""
        return None

    def forget(self, instance_id: str | None = None) -> None:
        self.history.forget(instance_id)

    def outage_ended(self) -> bool:
        """Azurite persists on an interval: restarted, it may have lost writes it acknowledged (or,
        never saved, the whole hub: see `_recreate`), and this store's cached copies (trusted while
        the hub lease is held) may be ahead of storage."""
        failures = retried_failures()
        if failures == self._failures_seen and self._recreations == self._recreations_seen:
            return False
        self._failures_seen = failures
        self._recreations_seen = self._recreations
        return True

    async def resync(self) -> list[str]:
        restored: list[str] = []
        for mine in self.history.cached():
            if mine.instance_id in restored:
                continue
            try:
                held = await self.history.sentinel(sanitize_key(mine.instance_id))
            except ResourceNotFoundError:
                held = None
            if held is not None and (
                held.get("ExecutionId") != mine.execution_id or int(held.get("HistoryLength") or 0) >= len(mine.history)
            ):
                continue  # storage has it (or something newer: a client's restart)
            mine.etag = None if held is None else str(held.metadata["etag"])
            with contextlib.suppress(ConcurrencyError):  # changed meanwhile: it is being worked on
                await self.checkpoint(mine, new_events_from=0, history_reset=True)
                restored.append(mine.instance_id)
        self.history.forget()
        if restored:
            log.warning(
                "devhost: storage had lost the last writes of %d instance(s); written back: %s",
                len(restored),
                ", ".join(sorted(restored)[:20]),
            )
        if self._starts:
            # Their messages may be what storage lost: the engine accepts one start per execution.
            await self.enqueue(list(self._starts.values()))
            log.info(
                "devhost: sent again the start message(s) of %d instance(s) not started yet: %s",
                len(self._starts),
                ", ".join(list(self._starts)[:20]),
            )
        return restored

    async def depth(self, queue: Queue) -> int:
        return await self._guarded(lambda: self.queues.depth(queue), retry=True)


async def open_store(
    settings: Mapping[str, str],
    hub: str,
    *,
    connection: str = "AzureWebJobsStorage",
    clock: Clock | None = None,
    partition_count: int = 4,
) -> AzureStorageStore:
    """Connect to the storage named by `settings[connection]` and create the hub's resources if missing."""
    check_hub_name(hub)
    if not 1 <= partition_count <= 16:
        raise ValueError("partition_count must be between 1 and 16")
    endpoints = clients(settings, connection)
    store = AzureStorageStore(endpoints, hub, clock=clock, partition_count=partition_count)
    try:
        await asyncio.gather(*(probe(c.url) for c in (endpoints.tables, endpoints.queues, endpoints.blobs)))
        await store.create_resources()
    except StorageUnavailable:
        await store.close()
        raise
    except (HttpResponseError, ServiceRequestError) as exc:
        await store.close()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageUnavailable(
            f"Azure Storage at {endpoints.tables.url} refused the task hub set-up: {message}"
        ) from None
    return store
