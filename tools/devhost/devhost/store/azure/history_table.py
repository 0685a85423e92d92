"""The `{hub}History` table: each instance's history rows and its sentinel, the checkpoint that
writes them, and the cache of what this process last wrote or read (DTFx's `AzureTableTrackingStore`
history half; the cache plays the part of DTFx's extended sessions).

`load` is one point read of the sentinel on the hot path: when its ETag matches what this
process last wrote or read, the cached history is reused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from ...clock import Clock
from ...history import Event, RuntimeStatus
from ...model import Instance
from ..base import ConcurrencyError
from . import batch, rows
from .blobs import LargeMessages
from .layout import (
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    SENTINEL,
    ids_row_key,
    row_key,
    sanitize_key,
    unsanitize_key,
)
from .resources import missing_resource

log = logging.getLogger("devhost.store")

_CACHE_SIZE = 2048
_HTTP_CONCURRENCY = (409, 412, 404)
# `ids-` rows that must commit with the sentinel (see `_write`) share its transaction; more than
# this and that checkpoint keeps the numbers in the sentinel's `Engine` column instead.
_MAX_IDS_ROWS_WITH_SENTINEL = 32


@dataclass
class _Cached:
    etag: str
    instance: Instance
    blobs: frozenset[str] = field(default_factory=frozenset)
    # The sentinel keeps `instance.engine.ids` in the `ids-` rows (not in its Engine column).
    ids_rows: bool = False


class HistoryTable:
    def __init__(self, table: TableClient, blobs: LargeMessages, clock: Clock, leased: Callable[[], bool]) -> None:
        self.table = table
        self._blobs = blobs
        self.clock = clock
        self._leased = leased
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        # Copies dropped from the cache because a write of them failed: no longer trusted for
        # `load`, but kept (until written again, or `resync`) in case storage lost what it had
        # acknowledged before the failure (a restarted Azurite).
        self._unconfirmed: OrderedDict[str, Instance] = OrderedDict()

    # ------------------------------------------------------------------ cache
    def _remember(self, instance_id: str, entry: _Cached, written: bool = False) -> None:
        if written:
            self._unconfirmed.pop(instance_id, None)
        self._cache[instance_id] = entry
        self._cache.move_to_end(instance_id)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    def forget(self, instance_id: str | None = None) -> None:
        """Stop trusting cached copies (all, or one: then kept as unconfirmed, see `cached`)."""
        if instance_id is None:
            self._cache.clear()
            self._unconfirmed.clear()
            return
        entry = self._cache.pop(instance_id, None)
        if entry is not None:
            self._unconfirmed[instance_id] = entry.instance
            while len(self._unconfirmed) > _CACHE_SIZE:
                self._unconfirmed.popitem(last=False)

    def cached(self) -> list[Instance]:
        """Copies of what this process last wrote or read, per instance, and of what it wrote last
        before a write failed (the longer history of the two comes first)."""
        out = [entry.instance.copy() for entry in self._cache.values()]
        out += [inst.copy() for inst in self._unconfirmed.values()]
        return sorted(out, key=lambda inst: -len(inst.history))

    # ------------------------------------------------------------------- read
    async def sentinel(self, pk: str) -> Any:
        """The sentinel row of partition `pk` (with its etag in `.metadata`); ResourceNotFoundError if none."""
        return await self.table.get_entity(pk, SENTINEL)

    async def load(self, instance_id: str, *, history: bool = True) -> Instance | None:
        if self._leased():
            # While this store holds the hub lease no other host writes to the hub, and all of
            # ours go through this object: the cache is the truth, skip the sentinel read.
            held = self._cache.get(instance_id)
            if held is not None:
                self._cache.move_to_end(instance_id)
                return held.instance.copy(history)
        pk = sanitize_key(instance_id)
        try:
            sentinel = await self.sentinel(pk)
        except ResourceNotFoundError as exc:
            if missing_resource(exc):  # the table itself is gone: not "no such instance"
                raise
            self._cache.pop(instance_id, None)
            return None
        etag = str(sentinel.metadata["etag"])
        cached = self._cache.get(instance_id)
        if cached is not None and cached.etag == etag:
            self._cache.move_to_end(instance_id)
            return cached.instance.copy(history)
        inst = await rows.row_instance(sentinel, self._blobs, self.clock.now(), engine=True)
        inst.etag = etag
        if not history:
            return inst
        length = sentinel.get("HistoryLength")
        ids_length = sentinel.get("IdsLength")
        if ids_length is None:
            inst.history = await self._read_history(pk, inst.execution_id, None if length is None else int(length))
        else:
            inst.history, inst.engine.ids = await asyncio.gather(
                self._read_history(pk, inst.execution_id, None if length is None else int(length)),
                self._read_ids(pk, int(ids_length)),
            )
        self._remember(instance_id, _Cached(etag, inst.copy(), rows.blob_names(sentinel), ids_length is not None))
        return inst

    async def _read_ids(self, pk: str, length: int) -> list[int | None]:
        if length <= 0:
            return []
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        params = {"pk": pk, "first": ids_row_key(0), "end": ids_row_key(rows.ids_chunks(length))}
        found = [row async for row in self.table.query_entities(query, parameters=params, select=["RowKey", "Ids"])]
        return rows.ids_from_rows(found, length)

    async def _read_history(self, pk: str, execution_id: str, length: int | None) -> list[Event]:
        """The current execution's rows; `length` (from the sentinel) bounds the read when known."""
        if length is not None and length <= 0:
            return []
        found: list[Mapping[str, Any]] = []
        query = "PartitionKey eq @pk and RowKey lt @end"
        end = row_key(length) if length is not None else SENTINEL
        async for row in self.table.query_entities(query, parameters={"pk": pk, "end": end}, results_per_page=1000):
            if row.get("ExecutionId") != execution_id or row["RowKey"] != row_key(len(found)):
                break  # a longer, older execution's leftovers (or a gap): the current one ends here
            found.append(row)
        if any(k.endswith("BlobName") for r in found for k in r):
            events = list(await asyncio.gather(*(rows.row_event(r, self._blobs) for r in found)))
        else:
            events = [await rows.row_event(r, self._blobs) for r in found]
        return rows.restore_played(events)

    async def unfinished(self) -> list[str]:
        """Ids of orchestrations whose sentinel says they are not finished, or hold an outbox."""
        active = " or ".join(f"RuntimeStatus eq '{s.value}'" for s in RuntimeStatus if not s.is_terminal)
        not_entity = "(PartitionKey lt '@' or PartitionKey ge 'A')"
        query = f"RowKey eq '{SENTINEL}' and ({active} or Outbox eq true) and {not_entity}"
        return [
            unsanitize_key(row["PartitionKey"])
            async for row in self.table.query_entities(query, select=["PartitionKey"])
        ]

    async def entity_stamps(self) -> dict[str, tuple[Any, ...]]:
        """Per entity partition, what its sentinel says (status, last update, exists)."""
        query = f"RowKey eq '{SENTINEL}' and {rows.ENTITY_PARTITIONS}"
        return {
            row["PartitionKey"]: rows.stamp(row)
            async for row in self.table.query_entities(
                query, select=["PartitionKey", "RuntimeStatus", "LastUpdatedTime", "EntityExists"]
            )
        }

    # ------------------------------------------------------------------ write
    async def write(self, instance: Instance, new_events_from: int, history_reset: bool) -> dict[str, Any]:
        """The checkpoint: new history rows and the sentinel in entity-group transactions guarded by the
        sentinel's etag. Returns the sentinel row written (the Instances row is derived from it).

        A checkpoint that fails in any way (a conflict, a timeout, a commit whose answer was lost)
        drops the cached copy: what storage holds is unknown until it is read again."""
        try:
            return await self._write(instance, new_events_from, history_reset)
        except BaseException:
            self.forget(instance.instance_id)
            raise

    async def _write(self, instance: Instance, new_events_from: int, history_reset: bool) -> dict[str, Any]:
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
            positions = [
                i
                for i in range(min(start, len(old)))
                if hist[i] is not old[i] and rows.differs_beyond_played(hist[i], old[i])
            ]
        positions.extend(range(start, len(hist)))
        uploads: dict[str, str] = {}
        event_rows = [rows.event_row(pk, i, instance.execution_id, hist[i], uploads) for i in positions]
        ids_rows = self._ids_rows(instance, pk, cached, history_reset)
        if ids_rows is not None:
            event_rows[:0] = ids_rows  # first: they land in the last transaction, the sentinel's
        sentinel = rows.sentinel_row(
            instance, pk, uploads, complete=True, now=self.clock.now(), ids_in_rows=ids_rows is not None
        )
        if uploads:
            await asyncio.gather(*(self._blobs.put(n, t) for n, t in uploads.items()))
        # Highest positions first: the batch that commits (with the full sentinel) holds the
        # lowest ones, so a crash between batches of a reset leaves the old execution's
        # beginning readable (rows past the sentinel's HistoryLength are never read).
        batches = split(event_rows)[::-1]
        etag = instance.etag
        try:
            for index, batch in enumerate(batches):
                last = index == len(batches) - 1
                ops: list[Any] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in batch]
                if last:
                    sentinel_op: Any = (
                        ("create", sentinel)
                        if etag is None
                        else (
                            "update",
                            sentinel,
                            {
                                "mode": UpdateMode.REPLACE,
                                "etag": etag,
                                "match_condition": MatchConditions.IfNotModified,
                            },
                        )
                    )
                elif etag is None:
                    sentinel_op = None  # a new instance: the sentinel insert in the last batch guards it all
                else:
                    marker = {"PartitionKey": pk, "RowKey": SENTINEL, "IsCheckpointComplete": False}
                    sentinel_op = (
                        "update",
                        marker,
                        {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
                    )
                if sentinel_op is not None:
                    ops.insert(0, sentinel_op)
                    etag = (await self.transact(ops))[0]
                else:
                    await self.transact(ops)
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
        new_blobs = rows.blob_names(sentinel)
        self._remember(iid, _Cached(etag, instance.copy(), new_blobs, ids_rows is not None), written=True)
        if cached is not None and cached.blobs - new_blobs:
            await self._blobs.delete(sorted(cached.blobs - new_blobs))
        return sentinel

    @staticmethod
    def _ids_rows(
        instance: Instance, pk: str, cached: _Cached | None, history_reset: bool
    ) -> list[dict[str, Any]] | None:
        """The `ids-` rows this checkpoint writes (the chunks that changed), or None to keep the
        numbers in the sentinel's Engine column this time.

        The rows must never disagree with the sentinel storage holds. They may go in any of the
        checkpoint's transactions (all but the last guarded by the sentinel's etag) when that
        sentinel does not read them (its numbers are in its Engine column) or when the numbers
        were only appended to (it reads no further than its `IdsLength`). Otherwise (unknown: a
        new instance or a dropped cache, or numbers rewritten by a realignment) they commit with
        the sentinel, in its transaction, or not at all."""
        ids = instance.engine.ids
        if cached is None or history_reset or instance.etag is None:
            chunks, anywhere = rows.changed_ids_chunks(ids, None), False
        elif not cached.ids_rows:
            chunks, anywhere = rows.changed_ids_chunks(ids, None), True
        else:
            old = cached.instance.engine.ids
            chunks, anywhere = rows.changed_ids_chunks(ids, old), ids[: len(old)] == old
        if not anywhere and len(chunks) > _MAX_IDS_ROWS_WITH_SENTINEL:
            return None
        return [rows.ids_row(pk, instance.execution_id, ids, c) for c in chunks]

    async def transact(self, operations: list[Any]) -> list[str | None]:
        """One entity-group transaction (see `batch`); each operation's new ETag. A transaction of one
        write (a new instance's Pending sentinel, a checkpoint that changes only the sentinel) goes
        as a plain entity request: as atomic, and cheaper for storage."""
        if len(operations) == 1 and operations[0][0] != "delete":
            return [await batch.write_one(self.table, operations[0])]
        return await batch.submit(self.table, operations)

    async def delete_partition(self, pk: str) -> bool:
        """Delete every row of an instance; True if it had a sentinel."""
        keys = [
            row["RowKey"]
            async for row in self.table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"], results_per_page=1000
            )
        ]
        for i in range(0, len(keys), MAX_BATCH_OPS):
            chunk = keys[i : i + MAX_BATCH_OPS]
            try:
                await self.table.submit_transaction([("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in chunk])
            except TableTransactionError:  # a row vanished meanwhile: delete one by one (missing is fine)
                for rk in chunk:
                    await self.table.delete_entity(pk, rk)
        return SENTINEL in keys


def split(event_rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Transactions of at most 99 rows (+ the sentinel) and ~2 MiB; always at least one."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for row in event_rows:
        row_size = sum(len(v) * 2 if isinstance(v, str) else 16 for v in row.values()) + 64 * len(row)
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_OPS - 1 or size + row_size > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += row_size
    return batches
