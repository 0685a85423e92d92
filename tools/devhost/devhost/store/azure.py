"""The task hub on Azure Storage (or Azurite): tables, queues and blobs in DTFx's layout.

Layout (docs/durable-protocol.md §7): `{hub}History` holds one row per history event (RowKey = 16
upper-case hex position) plus a `sentinel` row per instance, `{hub}Instances` one row per
instance for queries, `{hub}-control-NN` / `{hub}-workitems` the messages and
`{hub}-largemessages` whatever is too big for a queue message or a table property.

Why the sentinel carries everything: the sentinel's ETag is the instance's concurrency
token, and only rows of one partition can be written atomically. So the instance fields
and the engine's bookkeeping (`Instance.engine`, `buffered`, entity state) live as columns
on the sentinel, written in the same entity-group transaction as the new history rows; the
`Instances` row is a query index written afterwards (as DTFx does). `load` is one point
read of the sentinel on the hot path: when its ETag matches what this process last wrote
or read, the cached history is reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import gzip
import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ..clock import Clock, SystemClock
from ..history import EVENT_NAMES, EVENT_TYPES_BY_NAME, Event, EventType, RuntimeStatus, format_ts, parse_ts
from ..model import EngineState, Instance, Message, Queue, Receipt
from .base import ConcurrencyError, InstanceQuery, QueryPage

log = logging.getLogger("devhost.store")

# Azurite's well-known development account (public; Microsoft documents it).
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + _DEV_KEY + ";"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)

SENTINEL = "sentinel"
# A queue message body is at most 64 KiB; DTFx moves envelopes over 45 KiB to a blob.
MAX_QUEUE_MESSAGE_BYTES = 45 * 1024
# A table string property is at most 64 KiB of UTF-16; DTFx moves values over 60 KiB.
MAX_PROPERTY_UTF16_BYTES = 60 * 1024
# Queue visibility delays cannot exceed 7 days; longer timers are re-hidden on receive.
MAX_DELAY_SECONDS = 6 * 24 * 3600
# Entity-group transactions take at most 100 operations and 4 MiB; stay well below.
MAX_BATCH_OPS = 100
MAX_BATCH_BYTES = 2 * 1024 * 1024
RECEIVE_BATCH = 32
LEASE_SECONDS = 30
LEASE_RENEW_SECONDS = 10
_CACHE_SIZE = 2048
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
_ROW_META = frozenset({"PartitionKey", "RowKey", "Timestamp", "ExecutionId", "_Nulls", "_Json"})
_HTTP_CONCURRENCY = (409, 412, 404)


class StorageUnavailable(Exception):
    """Azure Storage (or Azurite) cannot be reached or refused us; the message names the endpoint."""


class HubInUse(Exception):
    """Another devhost holds the task hub's lease: two hosts on one hub would fight over messages."""


# ---------------------------------------------------------------- naming
def sanitize_key(key: str) -> str:
    """DTFx `KeySanitation`: table keys cannot hold / \\ # ? or control characters."""
    out: list[str] = []
    for ch in key:
        code = ord(ch)
        if ch == "^":
            out.append("^^")
        elif ch == "/":
            out.append("^0")
        elif ch == "\\":
            out.append("^1")
        elif ch == "#":
            out.append("^2")
        elif ch == "?":
            out.append("^3")
        elif code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append("^" + chr(code + 0xC0))
        else:
            out.append(ch)
    return "".join(out)


def unsanitize_key(key: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "^" and i + 1 < len(key):
            nxt = key[i + 1]
            out.append({"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}.get(nxt) or chr(ord(nxt) - 0xC0))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def fnv1a(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def control_queue_name(instance_id: str, hub: str, partitions: int = 4) -> str:
    """The control queue DTFx routes `instance_id` to (FNV-1a of the unescaped id)."""
    return f"{hub.lower()}-control-{fnv1a(instance_id) % partitions:02d}"


def row_key(position: int) -> str:
    return f"{position:016X}"


def _utf16_too_large(text: str) -> bool:
    if len(text) * 4 <= MAX_PROPERTY_UTF16_BYTES:  # cheap path: cannot exceed even if all surrogate pairs
        return False
    return len(text.encode("utf-16-le")) > MAX_PROPERTY_UTF16_BYTES


def _dt(value: Any) -> datetime | None:
    """Table datetimes come back as a datetime subclass; hand out plain aware datetimes."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_ts(value)
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=UTC)


def _odata_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prefix_upper_bound(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass
class _Cached:
    etag: str
    instance: Instance
    blobs: frozenset[str] = field(default_factory=frozenset)


# Instance fields with their own sentinel columns; any other field (added to the model later)
# travels in the `Extra` JSON column, so nothing is silently dropped.
_INSTANCE_COLUMNS = frozenset({
    "instance_id", "name", "runtime_status", "execution_id", "created_time", "last_updated_time", "input", "output",
    "custom_status", "completed_time", "parent_instance_id", "history", "engine", "buffered", "generation",
    "entity_exists", "entity_state", "etag",
})
_EXTRA_FIELDS = tuple(f.name for f in dataclasses.fields(Instance) if f.name not in _INSTANCE_COLUMNS)


def _encode_extra(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": format_ts(value)}
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in the sentinel's Extra column")


def _decode_extra(value: dict[str, Any]) -> Any:
    return parse_ts(value["$datetime"]) if set(value) == {"$datetime"} else value


def _restore_played(events: list[Event]) -> list[Event]:
    """IsPlayed as the engine had it: true before the last OrchestratorStarted (see `_write`)."""
    last_os = max((i for i, ev in enumerate(events) if ev.get("EventType") == EventType.ORCHESTRATOR_STARTED),
                  default=0)
    for ev in events[:last_os]:
        if ev.get("EventType") != EventType.ORCHESTRATOR_STARTED:
            ev["IsPlayed"] = True
    return events


def _differs_beyond_played(new: Event, old: Event) -> bool:
    if new == old:
        return False
    return {**new, "IsPlayed": None} != {**old, "IsPlayed": None}


# ------------------------------------------------------------- connection
def _setting(settings: Mapping[str, str], name: str) -> str | None:
    for key in (name, name.replace("__", ":")):
        value = settings.get(key)
        if value:
            return value
    return None


@dataclass
class _Endpoints:
    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    credential: Any = None


# Azurite on this machine is back within seconds of a restart, while the storage SDKs wait 18 s,
# then 24 s and 42 s between attempts: retry local queues and blobs every second for about a
# minute instead, and say so (at most every 10 s), so a host stalled on storage explains itself.
_LOOPBACK = re.compile(r"//(127\.0\.0\.1|localhost|\[::1\])[:/]", re.IGNORECASE)
_LOCAL_RETRIES = 60


class _LocalStorageRetry(LinearRetry):
    last_note = 0.0

    def __init__(self) -> None:
        super().__init__(backoff=1, random_jitter_range=1, retry_total=_LOCAL_RETRIES, retry_connect=_LOCAL_RETRIES)

    async def sleep(self, settings: dict[str, Any], transport: Any) -> None:
        now = time.monotonic()
        if now - _LocalStorageRetry.last_note >= 10:
            _LocalStorageRetry.last_note = now
            history = settings.get("history") or []
            error = getattr(history[-1], "error", None) if history else None
            reason = (str(error).splitlines() or [""])[0] if error else "no usable answer"
            log.warning("devhost: Azure Storage request failed (%s); retrying every second", reason)
        await super().sleep(settings, transport)


def _retry_options(local: bool) -> dict[str, Any]:
    return {"retry_policy": _LocalStorageRetry()} if local else {}


def _clients(settings: Mapping[str, str], connection: str) -> _Endpoints:
    """Clients from a connection string, `UseDevelopmentStorage=true` or identity settings."""
    text = _setting(settings, connection)
    if text:
        if text.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
            text = DEVELOPMENT_CONNECTION_STRING
        local = bool(_LOOPBACK.search(text))
        return _Endpoints(
            TableServiceClient.from_connection_string(text),
            QueueServiceClient.from_connection_string(text, **_retry_options(local)),
            BlobServiceClient.from_connection_string(text, **_retry_options(local)),
        )
    account = _setting(settings, f"{connection}__accountName")
    uris = {svc: _setting(settings, f"{connection}__{svc}ServiceUri") for svc in ("table", "queue", "blob")}
    if not account and not all(uris.values()):
        raise StorageUnavailable(
            f"No storage connection configured: set '{connection}' (a connection string, or "
            f"UseDevelopmentStorage=true for Azurite) or '{connection}__accountName' for identity-based access."
        )
    from azure.identity.aio import DefaultAzureCredential

    client_id = _setting(settings, f"{connection}__clientId")
    credential = DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
    table_uri = uris["table"] or f"https://{account}.table.core.windows.net"
    queue_uri = uris["queue"] or f"https://{account}.queue.core.windows.net"
    blob_uri = uris["blob"] or f"https://{account}.blob.core.windows.net"
    return _Endpoints(
        TableServiceClient(table_uri, credential=credential),
        QueueServiceClient(queue_uri, credential=credential),
        BlobServiceClient(blob_uri, credential=credential),
        credential,
    )


async def _probe(url: str, timeout: float = 5.0) -> None:
    """Fail fast with one clear line when nothing listens at `url` (the SDKs would retry for minutes)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as response:
                await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        hint = "; is Azurite running?" if "//127.0.0.1:" in url or "//localhost:" in url else ""
        raise StorageUnavailable(f"Azure Storage is not reachable at {url}: {reason}{hint}") from None


async def open_store(
    settings: Mapping[str, str],
    hub: str,
    *,
    connection: str = "AzureWebJobsStorage",
    clock: Clock | None = None,
    partition_count: int = 4,
) -> AzureStorageStore:
    """Connect to the storage named by `settings[connection]` and create the hub's resources if missing."""
    if not _HUB_NAME.match(hub):
        raise ValueError(f"Task hub name {hub!r} must be 3-45 letters or digits, starting with a letter.")
    if not 1 <= partition_count <= 16:
        raise ValueError("partition_count must be between 1 and 16")
    endpoints = _clients(settings, connection)
    store = AzureStorageStore(endpoints, hub, clock=clock, partition_count=partition_count)
    try:
        await asyncio.gather(*(_probe(c.url) for c in (endpoints.tables, endpoints.queues, endpoints.blobs)))
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


# ------------------------------------------------------------------ store
class AzureStorageStore:
    """The `Store` protocol on Azure Storage. Create it with `open_store`."""

    # How often a queue that came back empty is polled again when nothing local hints at new
    # messages (messages sent by other processes, expired visibility timeouts).
    idle_poll_seconds = 0.2
    # With the hub lease held, every sender to this hub is this object (which marks what it
    # sends), so idle queues only need a slow poll for expired visibility timeouts.
    leased_idle_poll_seconds = 2.0
    # Instances-row (query index) writes are coalesced per instance over this delay.
    index_delay_seconds = 0.5

    def __init__(self, endpoints: _Endpoints, hub: str, *, clock: Clock | None = None, partition_count: int = 4):
        self.clock: Clock = clock or SystemClock()
        self.hub = hub
        self.partition_count = partition_count
        self._endpoints = endpoints
        lower = hub.lower()
        self.instances_table_name = f"{hub}Instances"
        self.history_table_name = f"{hub}History"
        self.control_queue_names = [f"{lower}-control-{i:02d}" for i in range(partition_count)]
        self.work_queue_name = f"{lower}-workitems"
        # Messages that failed `max_dequeue_count` times are parked here for inspection.
        self.poison_queue_name = f"{lower}-poison"
        self.large_container_name = f"{lower}-largemessages"
        self.lease_container_name = f"{lower}-leases"
        self._instances: TableClient = endpoints.tables.get_table_client(self.instances_table_name)
        self._history: TableClient = endpoints.tables.get_table_client(self.history_table_name)
        self._queues: dict[str, QueueClient] = {
            name: endpoints.queues.get_queue_client(name) for name in [*self.control_queue_names, self.work_queue_name]
        }
        self._poison: QueueClient = endpoints.queues.get_queue_client(self.poison_queue_name)
        self._large: ContainerClient = endpoints.blobs.get_container_client(self.large_container_name)
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._message_blobs: dict[str, str] = {}
        self._next_control = 0
        # Polling hints (see `dequeue`): when each queue may next hold a visible message, and a
        # counter of local sends so a receive racing a send does not mark the queue idle.
        self._hot_at: dict[str, float] = dict.fromkeys(self._queues, 0.0)
        self._sends: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._lease: BlobLeaseClient | None = None
        self._lease_task: asyncio.Task[None] | None = None
        # Instances-row writes run off the checkpoint's critical path, latest state per instance
        # wins; `query`, `purge` and `close` wait for them (see `_index_later`).
        self._index_pending: dict[str, tuple[Instance, Mapping[str, Any]]] = {}
        self._index_writers: dict[str, asyncio.Task[None]] = {}
        self._index_flush = asyncio.Event()
        # Set when this store sends a message visible at once: wakes an idle dispatcher
        # (as the memory store's does) instead of leaving it to its next poll.
        self.changed = asyncio.Event()

    async def create_resources(self) -> None:
        async def table(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.tables.create_table(name)

        async def queue(client: QueueClient) -> None:
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()

        async def container(name: str) -> None:
            with contextlib.suppress(ResourceExistsError):
                await self._endpoints.blobs.create_container(name)

        await asyncio.gather(
            table(self.instances_table_name), table(self.history_table_name),
            *(queue(q) for q in [*self._queues.values(), self._poison]),
            container(self.large_container_name), container(self.lease_container_name),
        )

    async def close(self) -> None:
        await self.flush_index()
        await self.release_hub_lease()
        clients: list[Any] = [self._instances, self._history, self._large, *self._queues.values(),
                              self._endpoints.tables, self._endpoints.queues, self._endpoints.blobs]
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        if self._endpoints.credential is not None:
            with contextlib.suppress(Exception):
                await self._endpoints.credential.close()

    # ------------------------------------------------------------ hub lease
    async def acquire_hub_lease(self, lease_seconds: int = LEASE_SECONDS) -> None:
        """Take the hub's blob lease (renewed in the background); HubInUse if another devhost has it.

        `lease_seconds` (15-60) is how long a crashed devhost keeps others off the hub."""
        blob = self._endpoints.blobs.get_blob_client(self.lease_container_name, "devhost.lock")
        with contextlib.suppress(ResourceExistsError):
            await blob.upload_blob(json.dumps({"TaskHubName": self.hub, "PartitionCount": self.partition_count}),
                                   overwrite=False)
        lease = BlobLeaseClient(blob)
        try:
            await lease.acquire(lease_duration=lease_seconds)
        except ResourceExistsError:
            raise HubInUse(
                f"Task hub '{self.hub}' is in use by another devhost (lease on {blob.url}); stop it, or wait "
                f"{lease_seconds}s if it crashed, or use a different hub name."
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise HubInUse(f"Task hub '{self.hub}' is in use by another devhost (lease on {blob.url}).") from None
            raise
        self._lease = lease
        self._lease_task = asyncio.ensure_future(self._renew_lease(lease, min(LEASE_RENEW_SECONDS, lease_seconds / 3)))

    async def _renew_lease(self, lease: BlobLeaseClient, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await lease.renew()
            except Exception as exc:  # keep trying: a blip must not make us give up the hub
                log.error("devhost: renewing the lease on task hub %s failed: %s", self.hub, exc)

    async def release_hub_lease(self) -> None:
        task, self._lease_task = self._lease_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                await lease.release()

    # ------------------------------------------------------------- blobs
    async def _put_blob(self, name: str, text: str) -> None:
        await self._large.upload_blob(name, gzip.compress(text.encode("utf-8"), compresslevel=5), overwrite=True)

    async def _get_blob(self, name: str) -> str:
        downloader = await self._large.download_blob(name)
        return gzip.decompress(await downloader.readall()).decode("utf-8")

    async def _delete_blobs(self, names: Sequence[str]) -> None:
        async def one(name: str) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await self._large.delete_blob(name)

        if names:
            await asyncio.gather(*(one(n) for n in names), return_exceptions=True)

    # ---------------------------------------------------- row conversion
    def _large_value(self, entity: dict[str, Any], column: str, text: str, blob_prefix: str,
                     uploads: dict[str, str]) -> None:
        """Put `text` in the column, or in a content-named blob when too large for a table property.

        Content-named, so a checkpoint that loses the etag race can never overwrite a blob
        the winner references."""
        if not _utf16_too_large(text):
            entity[column] = text
            return
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        name = f"{blob_prefix}-{digest}-{column}.json.gz"
        uploads[name] = text
        entity[column] = ""
        entity[column + "BlobName"] = name

    def _event_row(self, pk: str, position: int, execution_id: str, ev: Event,
                   uploads: dict[str, str]) -> dict[str, Any]:
        rk = row_key(position)
        entity: dict[str, Any] = {"PartitionKey": pk, "RowKey": rk, "ExecutionId": execution_id}
        nulls: list[str] = []
        jsons: list[str] = []
        type_name = EVENT_NAMES.get(ev.get("EventType", -1), str(ev.get("EventType")))
        prefix = f"{pk}/history-{rk}-{type_name}"
        for key, value in ev.items():
            if key == "EventType":
                entity[key] = type_name
                continue
            column = "_Timestamp" if key == "Timestamp" else key
            if value is None:
                nulls.append(key)
            elif isinstance(value, bool | float):
                entity[column] = value
            elif isinstance(value, int):
                if -(2 ** 31) <= value < 2 ** 31:
                    entity[column] = value
                else:
                    entity[column] = json.dumps(value)
                    jsons.append(key)
            elif isinstance(value, str):
                self._large_value(entity, column, value, prefix, uploads)
            else:
                self._large_value(entity, column, json.dumps(value, separators=(",", ":")), prefix, uploads)
                jsons.append(key)
        if nulls:
            entity["_Nulls"] = ",".join(nulls)
        if jsons:
            entity["_Json"] = ",".join(jsons)
        return entity

    async def _row_event(self, row: Mapping[str, Any]) -> Event:
        ev: Event = {}
        for key, value in row.items():
            if key in _ROW_META or (key.endswith("BlobName") and key[:-8] in row):
                continue
            if key == "EventType":
                ev[key] = EVENT_TYPES_BY_NAME.get(value, int(value) if str(value).isdigit() else value)
            elif key == "_Timestamp":
                ev["Timestamp"] = value
            elif key + "BlobName" in row:
                ev[key] = await self._get_blob(row[key + "BlobName"])
            else:
                ev[key] = value
        for key in filter(None, (row.get("_Json") or "").split(",")):
            if key in ev:
                ev[key] = json.loads(ev[key])
        for key in filter(None, (row.get("_Nulls") or "").split(",")):
            ev[key] = None
        return ev

    def _sentinel_row(self, inst: Instance, pk: str, uploads: dict[str, str], complete: bool) -> dict[str, Any]:
        now = self.clock.now()
        entity: dict[str, Any] = {
            "PartitionKey": pk, "RowKey": SENTINEL, "ExecutionId": inst.execution_id,
            "IsCheckpointComplete": complete, "CheckpointCompletedTimestamp": now,
            "HistoryLength": len(inst.history), "InstanceId": inst.instance_id,
            "RuntimeStatus": inst.runtime_status.value,
            "CreatedTime": inst.created_time, "LastUpdatedTime": inst.last_updated_time,
            "Generation": inst.generation, "EntityExists": inst.entity_exists,
        }
        prefix = f"{pk}/instance"
        for column, text in (
            ("Name", inst.name), ("Input", inst.input), ("Output", inst.output), ("CustomStatus", inst.custom_status),
            ("ParentInstanceId", inst.parent_instance_id), ("EntityState", inst.entity_state),
        ):
            if text is not None:
                self._large_value(entity, column, text, prefix, uploads)
        if inst.completed_time is not None:
            entity["CompletedTime"] = inst.completed_time
        engine = inst.engine.to_json()
        if engine:
            self._large_value(entity, "Engine", json.dumps(engine, separators=(",", ":")), prefix, uploads)
        if inst.buffered:
            self._large_value(entity, "Buffered", json.dumps(inst.buffered, separators=(",", ":")), prefix, uploads)
        if _EXTRA_FIELDS:
            extra = {name: getattr(inst, name) for name in _EXTRA_FIELDS}
            self._large_value(entity, "Extra", json.dumps(extra, default=_encode_extra), prefix, uploads)
        return entity

    async def _text_column(self, row: Mapping[str, Any], column: str) -> str | None:
        blob = row.get(column + "BlobName")
        if blob:
            try:
                return await self._get_blob(blob)
            except ResourceNotFoundError:  # a query racing a checkpoint that replaced the blob
                return None
        value = row.get(column)
        return None if value is None else str(value)

    async def _row_instance(self, row: Mapping[str, Any], *, engine: bool) -> Instance:
        """An Instance from a sentinel row (engine=True) or an Instances row (status only)."""
        texts = await asyncio.gather(*(self._text_column(row, c) for c in (
            "Name", "Input", "Output", "CustomStatus", "ParentInstanceId", "EntityState", "Engine", "Buffered",
            "Extra")))
        name, input_text, output, custom, parent, entity_state, engine_text, buffered_text, extra_text = texts
        instance_id = row.get("InstanceId") or unsanitize_key(row["PartitionKey"])
        created = _dt(row.get("CreatedTime")) or self.clock.now()
        inst = Instance(
            instance_id=instance_id, name=name or "", runtime_status=RuntimeStatus(row.get("RuntimeStatus", "Pending")),
            execution_id=row.get("ExecutionId") or "", created_time=created,
            last_updated_time=_dt(row.get("LastUpdatedTime")) or created,
            input=input_text, output=output, custom_status=custom, completed_time=_dt(row.get("CompletedTime")),
            parent_instance_id=parent, generation=int(row.get("Generation") or 0),
            entity_exists=bool(row.get("EntityExists")), entity_state=entity_state,
        )
        if extra_text:
            for key, value in json.loads(extra_text, object_hook=_decode_extra).items():
                if key in _EXTRA_FIELDS:
                    setattr(inst, key, value)
        if engine:
            inst.engine = EngineState.from_json(json.loads(engine_text)) if engine_text else EngineState()
            inst.buffered = json.loads(buffered_text) if buffered_text else []
            inst.etag = row.metadata["etag"] if hasattr(row, "metadata") else None
        return inst

    @staticmethod
    def _blob_names(row: Mapping[str, Any]) -> frozenset[str]:
        return frozenset(v for k, v in row.items() if k.endswith("BlobName") and v)

    # ------------------------------------------------------------ instances
    def _remember(self, instance_id: str, entry: _Cached) -> None:
        self._cache[instance_id] = entry
        self._cache.move_to_end(instance_id)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    async def load(self, instance_id: str, *, history: bool = True) -> Instance | None:
        if self._lease is not None:
            # While this store holds the hub lease no other host writes to the hub, and all of
            # ours go through this object: the cache is the truth, skip the sentinel read.
            held = self._cache.get(instance_id)
            if held is not None:
                self._cache.move_to_end(instance_id)
                return held.instance.copy(history)
        pk = sanitize_key(instance_id)
        try:
            sentinel = await self._history.get_entity(pk, SENTINEL)
        except ResourceNotFoundError:
            self._cache.pop(instance_id, None)
            return None
        etag = str(sentinel.metadata["etag"])
        cached = self._cache.get(instance_id)
        if cached is not None and cached.etag == etag:
            self._cache.move_to_end(instance_id)
            return cached.instance.copy(history)
        inst = await self._row_instance(sentinel, engine=True)
        inst.etag = etag
        if not history:
            return inst
        length = sentinel.get("HistoryLength")
        inst.history = await self._read_history(pk, inst.execution_id, None if length is None else int(length))
        self._remember(instance_id, _Cached(etag, inst.copy(), self._blob_names(sentinel)))
        return inst

    async def _read_history(self, pk: str, execution_id: str, length: int | None) -> list[Event]:
        """The current execution's rows; `length` (from the sentinel) bounds the read when known."""
        if length is not None and length <= 0:
            return []
        rows: list[Mapping[str, Any]] = []
        query = "PartitionKey eq @pk and RowKey lt @end"
        end = row_key(length) if length is not None else SENTINEL
        async for row in self._history.query_entities(query, parameters={"pk": pk, "end": end},
                                                      results_per_page=1000):
            if row.get("ExecutionId") != execution_id or row["RowKey"] != row_key(len(rows)):
                break  # a longer, older execution's leftovers (or a gap): the current one ends here
            rows.append(row)
        if any(k.endswith("BlobName") for r in rows for k in r):
            events = list(await asyncio.gather(*(self._row_event(r) for r in rows)))
        else:
            events = [await self._row_event(r) for r in rows]
        return _restore_played(events)

    async def create(self, instance: Instance) -> None:
        await self._write(instance, 0, history_reset=True)
        # A dispatcher checkpoint may have landed between our sentinel write and our Instances
        # row: make sure the query index does not keep our older Pending row.
        for _ in range(3):
            try:
                sentinel = await self._history.get_entity(sanitize_key(instance.instance_id), SENTINEL)
            except ResourceNotFoundError:
                return
            if sentinel.metadata["etag"] == instance.etag:
                return
            await self._upsert_instance_row(await self._row_instance(sentinel, engine=False), sentinel)

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        await self._write(instance, new_events_from, history_reset)

    async def _write(self, instance: Instance, new_events_from: int, history_reset: bool) -> None:
        iid = instance.instance_id
        pk = sanitize_key(iid)
        hist = instance.history
        cached = self._cache.get(iid)
        if cached is not None and (cached.etag != instance.etag or instance.etag is None):
            cached = None
        start = 0 if history_reset else max(0, min(new_events_from, len(hist)))
        positions: list[int] = []
        if cached is not None and not history_reset:
            # Earlier events the engine replaced since they were stored. Flipping IsPlayed to
            # true is not worth a row write: replay treats every event before the episode's
            # OrchestratorStarted as played anyway (docs/durable-protocol.md §1.5), so only the cached copy
            # carries the flag.
            old = cached.instance.history
            positions = [i for i in range(min(start, len(old)))
                         if hist[i] is not old[i] and _differs_beyond_played(hist[i], old[i])]
        positions.extend(range(start, len(hist)))
        uploads: dict[str, str] = {}
        rows = [self._event_row(pk, i, instance.execution_id, hist[i], uploads) for i in positions]
        sentinel = self._sentinel_row(instance, pk, uploads, complete=True)
        if uploads:
            await asyncio.gather(*(self._put_blob(n, t) for n, t in uploads.items()))
        # Highest positions first: the batch that commits (with the full sentinel) holds the
        # lowest ones, so a crash between batches of a reset leaves the old execution's
        # beginning readable (rows past the sentinel's HistoryLength are never read).
        batches = self._split(rows)[::-1]
        etag = instance.etag
        try:
            for index, batch in enumerate(batches):
                last = index == len(batches) - 1
                ops: list[Any] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in batch]
                if last:
                    sentinel_op: Any = (("create", sentinel) if etag is None else
                                        ("update", sentinel, {"mode": UpdateMode.REPLACE, "etag": etag,
                                                              "match_condition": MatchConditions.IfNotModified}))
                elif etag is None:
                    sentinel_op = None  # a new instance: the sentinel insert in the last batch guards it all
                else:
                    marker = {"PartitionKey": pk, "RowKey": SENTINEL, "IsCheckpointComplete": False}
                    sentinel_op = ("update", marker, {"mode": UpdateMode.MERGE, "etag": etag,
                                                      "match_condition": MatchConditions.IfNotModified})
                if sentinel_op is not None:
                    ops.insert(0, sentinel_op)
                    result = await self._history.submit_transaction(ops)
                    etag = result[0]["etag"]
                else:
                    await self._history.submit_transaction(ops)
        except TableTransactionError as exc:
            if exc.status_code in _HTTP_CONCURRENCY:
                code = getattr(exc, "error_code", None) or exc.status_code
                if instance.etag is not None and etag != instance.etag:
                    log.error("devhost: checkpoint of %s stopped half-way (%s)", iid, code)
                raise ConcurrencyError(f"instance {iid!r} was changed by someone else ({code})") from None
            raise
        except (ResourceExistsError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"instance {iid!r} was changed by someone else ({exc})") from None
        assert etag is not None
        instance.etag = etag
        new_blobs = self._blob_names(sentinel)
        self._remember(iid, _Cached(etag, instance.copy(), new_blobs))
        self._index_later(instance, sentinel)
        if cached is not None and cached.blobs - new_blobs:
            await self._delete_blobs(sorted(cached.blobs - new_blobs))

    @staticmethod
    def _split(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Transactions of at most 99 rows (+ the sentinel) and ~2 MiB; always at least one."""
        batches: list[list[dict[str, Any]]] = [[]]
        size = 0
        for row in rows:
            row_size = sum(len(v) * 2 if isinstance(v, str) else 16 for v in row.values()) + 64 * len(row)
            if batches[-1] and (len(batches[-1]) >= MAX_BATCH_OPS - 1 or size + row_size > MAX_BATCH_BYTES):
                batches.append([])
                size = 0
            batches[-1].append(row)
            size += row_size
        return batches

    def _index_later(self, inst: Instance, sentinel: Mapping[str, Any]) -> None:
        """Queue the Instances-row write: it is a query index only (`load` reads the sentinel),
        so the checkpoint need not wait for it. Writes of one instance are coalesced over
        `index_delay_seconds` (the last state wins) and stay in order (one writer each);
        a finished instance is written at once."""
        iid = inst.instance_id
        self._index_pending[iid] = (inst, sentinel)
        if iid not in self._index_writers:
            delay = 0.0 if inst.runtime_status.is_terminal else self.index_delay_seconds
            self._index_writers[iid] = asyncio.ensure_future(self._index_writer(iid, delay))

    async def _index_writer(self, iid: str, delay: float) -> None:
        failures = 0
        try:
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._index_flush.wait(), delay)
            while iid in self._index_pending:
                inst, sentinel = self._index_pending.pop(iid)
                if await self._upsert_instance_row(inst, sentinel):
                    failures = 0
                    continue
                # Storage unreachable: keep the latest state and try again, backing off, so a
                # finished instance is not listed as running forever.
                self._index_pending.setdefault(iid, (inst, sentinel))
                failures += 1
                if failures > 12:
                    log.error("devhost: giving up updating the Instances row of %s", iid)
                    return
                await asyncio.sleep(min(0.5 * 2 ** failures, 30))
        finally:
            self._index_writers.pop(iid, None)

    async def flush_index(self) -> None:
        """Wait until every Instances row reflects the last checkpoint."""
        while self._index_writers:
            self._index_flush.set()
            await asyncio.gather(*list(self._index_writers.values()), return_exceptions=True)
        self._index_flush.clear()

    async def _upsert_instance_row(self, inst: Instance, sentinel: Mapping[str, Any]) -> bool:
        """The query index (§7.2), derived from the sentinel columns (blob names shared)."""
        entity: dict[str, Any] = {
            "PartitionKey": sentinel["PartitionKey"], "RowKey": "", "Version": "", "TaskHubName": self.hub,
        }
        for column in ("InstanceId", "Name", "ExecutionId", "Input", "Output", "CustomStatus", "RuntimeStatus",
                       "CreatedTime", "LastUpdatedTime", "CompletedTime", "Generation", "ParentInstanceId", "Extra",
                       "EntityExists", "EntityState"):
            if column in sentinel:
                entity[column] = sentinel[column]
            if column + "BlobName" in sentinel:
                entity[column + "BlobName"] = sentinel[column + "BlobName"]
        for attempt in range(2):
            try:
                await self._instances.upsert_entity(entity, mode=UpdateMode.REPLACE)
                return True
            except (HttpResponseError, ServiceRequestError) as exc:
                # The checkpoint itself is committed (and `load` reads the sentinel), so a failure
                # here must not make the dispatcher redo the work item: only queries lag behind.
                if attempt:
                    log.warning("devhost: updating the Instances row of %s failed: %s", entity.get("InstanceId"), exc)
        return False

    async def query(self, query: InstanceQuery) -> QueryPage:
        await self.flush_index()
        clauses = ["RowKey eq ''"]
        params: dict[str, Any] = {}
        if query.entities:
            clauses.append("PartitionKey ge '@' and PartitionKey lt 'A'")
        else:
            clauses.append("(PartitionKey lt '@' or PartitionKey ge 'A')")
        if query.instance_id_prefix:
            prefix = sanitize_key(query.instance_id_prefix)
            clauses.append(f"PartitionKey ge {_odata_str(prefix)} and PartitionKey lt "
                           f"{_odata_str(_prefix_upper_bound(prefix))}")
        if query.runtime_status:
            clauses.append("(" + " or ".join(f"RuntimeStatus eq {_odata_str(RuntimeStatus(s).value)}"
                                             for s in query.runtime_status) + ")")
        if query.created_from is not None:
            clauses.append("CreatedTime ge @created_from")
            params["created_from"] = query.created_from
        if query.created_to is not None:
            clauses.append("CreatedTime le @created_to")
            params["created_to"] = query.created_to
        token = json.loads(query.continuation) if query.continuation else None
        pages = self._instances.query_entities(" and ".join(clauses), parameters=params,
                                               results_per_page=max(1, min(query.page_size, 1000))).by_page(token)
        rows: list[Any] = []
        async for page in pages:
            rows = [row async for row in page]
            break
        continuation = pages.continuation_token  # type: ignore[attr-defined]
        found = await asyncio.gather(*(self._row_instance(r, engine=False) for r in rows))
        instances = [inst for inst in found if query.matches(inst)]  # name (case-insensitive) is client-side
        return QueryPage(instances, json.dumps(continuation) if continuation else None)

    async def unfinished(self) -> list[str]:
        """From the sentinels (written with each checkpoint), not the lazily written Instances rows.

        Read at host start, so it also repairs the query index: a host that died between a
        checkpoint and its Instances-row write leaves a row that still says Running."""
        await self.flush_index()
        active = " or ".join(f"RuntimeStatus eq '{s.value}'" for s in RuntimeStatus if not s.is_terminal)
        not_entity = "(PartitionKey lt '@' or PartitionKey ge 'A')"
        query = f"RowKey eq '{SENTINEL}' and ({active}) and {not_entity}"
        ids = [unsanitize_key(row["PartitionKey"])
               async for row in self._history.query_entities(query, select=["PartitionKey"])]
        running = set(ids)
        stale = [row["PartitionKey"] async for row in self._instances.query_entities(
            f"RowKey eq '' and ({active}) and {not_entity}", select=["PartitionKey"])
                 if unsanitize_key(row["PartitionKey"]) not in running]
        for pk in stale:
            with contextlib.suppress(ResourceNotFoundError):
                sentinel = await self._history.get_entity(pk, SENTINEL)
                await self._upsert_instance_row(await self._row_instance(sentinel, engine=False), sentinel)
        if stale:
            log.info("devhost: repaired %d stale Instances row(s)", len(stale))
        return ids

    async def purge(self, instance_id: str) -> int:
        await self.flush_index()
        pk = sanitize_key(instance_id)
        self._cache.pop(instance_id, None)
        keys = [row["RowKey"] async for row in self._history.query_entities(
            "PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"], results_per_page=1000)]
        existed = SENTINEL in keys
        for i in range(0, len(keys), MAX_BATCH_OPS):
            chunk = keys[i:i + MAX_BATCH_OPS]
            try:
                await self._history.submit_transaction([("delete", {"PartitionKey": pk, "RowKey": rk})
                                                        for rk in chunk])
            except TableTransactionError:  # a row vanished meanwhile: delete one by one (missing is fine)
                for rk in chunk:
                    await self._history.delete_entity(pk, rk)
        try:
            await self._instances.get_entity(pk, "", select=["RowKey"])
            existed = True
        except ResourceNotFoundError:
            pass
        else:  # (delete_entity does not report a missing entity, hence the read)
            await self._instances.delete_entity(pk, "")
        names = [b.name async for b in self._large.list_blobs(name_starts_with=pk + "/")]
        await self._delete_blobs(names)
        return 1 if existed else 0

    # --------------------------------------------------------------- queues
    def _queue_for(self, msg: Message) -> str:
        if msg.queue == "work":
            return self.work_queue_name
        return control_queue_name(msg.instance_id, self.hub, self.partition_count)

    async def enqueue(self, messages: Sequence[Message]) -> None:
        if messages:
            now = self.clock.now()
            await asyncio.gather(*(self._send(m, now) for m in messages))

    async def _send(self, msg: Message, now: datetime, queue_name: str | None = None) -> None:
        body = json.dumps({
            "id": msg.id, "instance_id": msg.instance_id, "execution_id": msg.execution_id, "queue": msg.queue,
            "event": msg.event, "visible_at": format_ts(msg.visible_at) if msg.visible_at else None,
            "sender": msg.sender,
        }, separators=(",", ":"))
        size = len(body.encode("utf-8"))
        if size * 5 > MAX_QUEUE_MESSAGE_BYTES:  # the body travels XML-escaped: measure that when it may matter
            size = len(xml_escape(body).encode("utf-8"))
        if size > MAX_QUEUE_MESSAGE_BYTES:
            type_name = EVENT_NAMES.get(msg.event.get("EventType", -1), "Event")
            name = f"{sanitize_key(msg.instance_id)}/message-{msg.id}-{type_name}.json.gz"
            await self._put_blob(name, body)
            body = json.dumps({"CompressedBlobName": name, "id": msg.id, "instance_id": msg.instance_id})
        delay = 0
        if msg.visible_at is not None and msg.visible_at > now:
            delay = min(math.ceil((msg.visible_at - now).total_seconds()), MAX_DELAY_SECONDS)
        if queue_name is not None:  # the poison queue: kept, never received by the dispatcher
            await self._poison.send_message(body, time_to_live=-1)
            return
        name = self._queue_for(msg)
        await self._queues[name].send_message(body, visibility_timeout=delay or None, time_to_live=-1)
        self._heat(name, delay)
        if not delay:
            self.changed.set()

    def _heat(self, name: str, delay: float) -> None:
        """A message will be visible in `name` after `delay` seconds: poll it from then on."""
        self._sends[name] += 1
        self._hot_at[name] = min(self._hot_at[name], time.monotonic() + delay)

    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        """Up to `max_count` messages.

        Every receive is a round trip even when the queue is empty, and the dispatcher polls
        often, so queues are polled only while they may hold something: right after this
        store sent to them (or a delayed message of ours comes due), while they keep
        returning full batches, and otherwise every `idle_poll_seconds` (for messages from
        other processes and expired visibility timeouts). Control queues are received from
        in parallel, each up to its share of `max_count`; queues that filled their share
        are topped up one by one, starting from a rotating queue so none is starved."""
        if max_count <= 0:
            return []
        visibility = max(1, math.ceil(visibility_seconds))
        now = time.monotonic()
        if queue == "work":
            if self._hot_at[self.work_queue_name] > now:
                return []
            return await self._receive(self.work_queue_name, min(max_count, RECEIVE_BATCH), visibility)
        names = self.control_queue_names[self._next_control:] + self.control_queue_names[:self._next_control]
        self._next_control = (self._next_control + 1) % len(names)
        names = [n for n in names if self._hot_at[n] <= now][:max_count]
        if not names:
            return []
        share = max(1, max_count // len(names))
        batches = await asyncio.gather(*(self._receive(n, share, visibility) for n in names))
        out = [m for batch in batches for m in batch]
        for name, batch in zip(names, batches):
            want = min(max_count - len(out), RECEIVE_BATCH)
            if want <= 0:
                break
            if len(batch) >= share:  # it may hold more
                out.extend(await self._receive(name, want, visibility))
        return out

    async def _receive(self, name: str, count: int, visibility: int) -> list[Message]:
        """One receive round trip (the SDK's pager would make a second call when a page is short)."""
        sends = self._sends[name]
        pages = self._queues[name].receive_messages(messages_per_page=count, visibility_timeout=visibility).by_page()
        received: list[Any] = []
        async for page in pages:
            received = [m async for m in page]
            break
        if len(received) < count and self._sends[name] == sends:
            idle = self.leased_idle_poll_seconds if self._lease is not None else self.idle_poll_seconds
            self._hot_at[name] = time.monotonic() + idle  # drained: poll it lazily
        if not received:
            return []
        decoded = await asyncio.gather(*(self._decode(name, r) for r in received), return_exceptions=True)
        out: list[Message] = []
        for raw, result in zip(received, decoded):
            if isinstance(result, BaseException):
                # One unreadable message (a storage blip fetching its blob) must not keep the
                # rest of the batch hidden for the whole visibility timeout: retry it shortly.
                log.warning("devhost: reading message %s from %s failed: %s", raw.id, name, result)
                with contextlib.suppress(Exception):
                    await self._queues[name].update_message(raw.id, raw.pop_receipt, visibility_timeout=2)
                    self._heat(name, 2)
            elif result is not None:
                out.append(result)
        return out

    async def _decode(self, queue_name: str, raw: Any) -> Message | None:
        try:
            data = json.loads(raw.content)
            if not isinstance(data, dict) or not ("CompressedBlobName" in data or "event" in data):
                raise ValueError("not a devhost message")
        except (ValueError, TypeError) as exc:
            # Not ours (another tool wrote to the hub's queues): it can never be processed, and
            # left in place it would come back forever.
            log.error("devhost: deleting unreadable message %s from %s (%s): %.200r", raw.id, queue_name, exc,
                      raw.content)
            with contextlib.suppress(ResourceNotFoundError):
                await self._queues[queue_name].delete_message(raw.id, raw.pop_receipt)
            return None
        blob = data.get("CompressedBlobName")
        if blob:
            try:
                data = json.loads(await self._get_blob(blob))
            except ResourceNotFoundError:
                # Blobs go when the message carrying them is acked: this is a second copy of a
                # message already processed (a send repeated after a crash).
                log.warning("devhost: dropping duplicate of processed message %s (%s)", data.get("id"), blob)
                with contextlib.suppress(ResourceNotFoundError):
                    await self._queues[queue_name].delete_message(raw.id, raw.pop_receipt)
                return None
            self._message_blobs[raw.id] = blob
        visible_at = parse_ts(data["visible_at"]) if data.get("visible_at") else None
        if visible_at is not None:
            remaining = (visible_at - self.clock.now()).total_seconds()
            if remaining > 0.001:  # never early: hide it again until due (long timers)
                hide = min(math.ceil(remaining), MAX_DELAY_SECONDS)
                await self._queues[queue_name].update_message(raw.id, raw.pop_receipt, visibility_timeout=hide)
                self._heat(queue_name, hide)
                self._message_blobs.pop(raw.id, None)
                return None
        return Message(
            instance_id=data["instance_id"], event=data["event"], queue=data.get("queue", "control"),
            execution_id=data.get("execution_id"), visible_at=visible_at, sender=data.get("sender"),
            id=data["id"], dequeue_count=int(raw.dequeue_count or 1),
            receipt=Receipt(queue_name, raw.id, raw.pop_receipt),
        )

    async def ack(self, messages: Sequence[Message]) -> None:
        async def one(msg: Message) -> None:
            receipt = msg.receipt
            if receipt is None:
                return
            try:
                await self._queues[receipt.queue].delete_message(receipt.message_id, receipt.pop_receipt)
            except ResourceNotFoundError:
                pass  # already gone (visibility expired and someone else took it, or acked twice)
            except HttpResponseError as exc:
                log.warning("devhost: deleting message %s failed: %s", msg.id, exc.reason)
                return
            blob = self._message_blobs.pop(receipt.message_id, None)
            if blob:
                await self._delete_blobs([blob])

        if messages:
            await asyncio.gather(*(one(m) for m in messages))

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        delay = min(max(0, math.ceil(delay_seconds)), MAX_DELAY_SECONDS)

        async def one(msg: Message) -> None:
            receipt = msg.receipt
            if receipt is None:
                return
            self._message_blobs.pop(receipt.message_id, None)
            try:
                await self._queues[receipt.queue].update_message(receipt.message_id, receipt.pop_receipt,
                                                                 visibility_timeout=delay)
                self._heat(receipt.queue, delay)
            except (ResourceNotFoundError, HttpResponseError, ServiceRequestError) as exc:
                # It becomes visible again anyway when its visibility timeout ends.
                log.debug("devhost: abandoning message %s failed: %s", msg.id, exc)

        if messages:
            await asyncio.gather(*(one(m) for m in messages))

    async def poison(self, messages: Sequence[Message]) -> None:
        """Copy messages to the poison queue, then delete them from their own queue."""
        if not messages:
            return
        now = self.clock.now()
        await asyncio.gather(*(self._send(m, now, self.poison_queue_name) for m in messages))
        await self.ack(messages)

    async def next_visible_at(self, queue: Queue) -> datetime | None:
        """Unknown without peeking at every delayed message: the dispatcher polls instead."""
        return None

    async def depth(self, queue: Queue) -> int:
        """Approximate number of messages (visible or not) in the queue(s)."""
        names = [self.work_queue_name] if queue == "work" else self.control_queue_names
        props = await asyncio.gather(*(self._queues[n].get_queue_properties() for n in names))
        return sum(int(p.approximate_message_count or 0) for p in props)


def new_hub_name(prefix: str = "devhost") -> str:
    """A fresh, valid task hub name (tests)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


__all__ = [
    "AzureStorageStore", "ConcurrencyError", "HubInUse", "Receipt", "StorageUnavailable", "control_queue_name",
    "new_hub_name", "open_store", "sanitize_key", "unsanitize_key",
]
