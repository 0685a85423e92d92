"""The `Store` protocol on Azure Storage (or Azurite): the facade over the hub's tables, queues,
blobs and lease (DTFx's `AzureStorageOrchestrationService`). Create it with `open_store`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError, ServiceRequestError

from ...clock import Clock, SystemClock
from ...model import Instance, Message, Queue
from ..base import ConcurrencyError, InstanceQuery, QueryPage
from .blobs import LargeMessages
from .connection import Endpoints, StorageUnavailable, clients, probe, retried_failures
from .history_table import HistoryTable
from .instances_table import InstancesTable
from .layout import HubLayout, check_hub_name, sanitize_key
from .lease import LEASE_SECONDS, HubLease
from .queues import HubQueues

log = logging.getLogger("devhost.store")


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
        self.history = HistoryTable(endpoints.tables.get_table_client(self.layout.history_table), self.blobs,
                                    self.clock, lambda: self.lease.held)
        self.instances = InstancesTable(endpoints.tables.get_table_client(self.layout.instances_table), self.blobs,
                                        self.clock, hub)
        self.queues = HubQueues(endpoints.queues, self.layout, self.blobs, self.clock, lambda: self.lease.held)
        # Set when this store sends a message visible at once: wakes an idle dispatcher.
        self.changed: asyncio.Event = self.queues.changed
        self._failures_seen = retried_failures()

    async def create_resources(self) -> None:
        async def table(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.tables.create_table(name)

        async def container(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.blobs.create_container(name)

        await asyncio.gather(
            table(self.layout.instances_table), table(self.layout.history_table), self.queues.create(),
            container(self.layout.large_messages_container), container(self.layout.leases_container),
        )

    async def close(self) -> None:
        await self.instances.flush()
        await self.lease.release()
        await self.queues.close()
        closing: list[Any] = [self.instances.table, self.history.table, self.blobs.container,
                              self._endpoints.tables, self._endpoints.queues, self._endpoints.blobs]
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
        return await self.history.load(instance_id, history=history)

    async def create(self, instance: Instance) -> None:
        await self.checkpoint(instance, new_events_from=0, history_reset=True)
        # A dispatcher checkpoint may have landed between our sentinel write and our Instances
        # row: make sure the query index does not keep our older Pending row.
        for _ in range(3):
            try:
                sentinel = await self.history.sentinel(sanitize_key(instance.instance_id))
            except ResourceNotFoundError:
                return
            if sentinel.metadata["etag"] == instance.etag:
                return
            await self.instances.upsert(sentinel)

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        sentinel = await self.history.write(instance, new_events_from, history_reset)
        self.instances.index_later(instance, sentinel)

    async def flush_index(self) -> None:
        await self.instances.flush()

    async def query(self, query: InstanceQuery) -> QueryPage:
        return await self.instances.query(query)

    async def unfinished(self) -> list[str]:
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
        existed = await self.history.delete_partition(pk)
        existed = await self.instances.delete(pk) or existed
        await self.blobs.delete(await self.blobs.names_under(pk + "/"))
        return 1 if existed else 0

    # ----------------------------------------------------------------- queues
    async def enqueue(self, messages: Sequence[Message]) -> None:
        await self.queues.enqueue(messages)

    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        return await self.queues.dequeue(queue, max_count, visibility_seconds)

    async def ack(self, messages: Sequence[Message]) -> None:
        await self.queues.ack(messages)

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        await self.queues.abandon(messages, delay_seconds)

    async def poison(self, messages: Sequence[Message]) -> None:
        await self.queues.poison(messages)

    async def next_visible_at(self, queue: Queue) -> datetime | None:
        """Unknown without peeking at every delayed message: the dispatcher polls instead."""
        return None

    def forget(self, instance_id: str | None = None) -> None:
        self.history.forget(instance_id)

    def outage_ended(self) -> bool:
        """Azurite persists on an interval: restarted, it may have lost writes it acknowledged, and
        this store's cached copies (trusted while the hub lease is held) may be ahead of storage."""
        failures = retried_failures()
        if failures == self._failures_seen:
            return False
        self._failures_seen = failures
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
            if held is not None and (held.get("ExecutionId") != mine.execution_id
                                     or int(held.get("HistoryLength") or 0) >= len(mine.history)):
                continue  # storage has it (or something newer: a client's restart)
            mine.etag = None if held is None else str(held.metadata["etag"])
            with contextlib.suppress(ConcurrencyError):  # changed meanwhile: it is being worked on
                await self.checkpoint(mine, new_events_from=0, history_reset=True)
                restored.append(mine.instance_id)
        self.history.forget()
        if restored:
            log.warning("devhost: storage had lost the last writes of %d instance(s); written back: %s",
                        len(restored), ", ".join(sorted(restored)[:20]))
        return restored

    async def depth(self, queue: Queue) -> int:
        return await self.queues.depth(queue)


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
        raise StorageUnavailable(f"Azure Storage at {endpoints.tables.url} refused the task hub set-up: {message}") \
            from None
    return store
