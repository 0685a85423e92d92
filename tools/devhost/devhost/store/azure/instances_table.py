"""The `{hub}Instances` table: one row per instance for queries (DTFx's `AzureTableTrackingStore`
instances half, §7.2). It is an index only (`load` reads the sentinel), so its writes run off the
checkpoint's critical path: coalesced per instance, latest state wins, in order (one writer each);
`query`, `purge` and `close` wait for them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ...clock import Clock
from ...history import RuntimeStatus
from ...model import Instance
from ..base import InstanceQuery, QueryPage
from . import batch, rows
from .blobs import LargeMessages
from .layout import sanitize_key

log = logging.getLogger("devhost.store")


def _odata_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prefix_upper_bound(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class InstancesTable:
    # Instances-row (query index) writes are coalesced per instance over this delay.
    index_delay_seconds = 0.5

    def __init__(
        self,
        table: TableClient,
        blobs: LargeMessages,
        clock: Clock,
        hub: str,
        read_sentinel: Callable[[str], Awaitable[Any]],
    ) -> None:
        self.table = table
        self._blobs = blobs
        self.clock = clock
        self.hub = hub
        self._read_sentinel = read_sentinel
        # Per instance: the latest state to write, and the ETag of its sentinel when that state must
        # be checked against storage first (see `index_later`).
        self._pending: dict[str, tuple[Instance, Mapping[str, Any], str | None]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._flush = asyncio.Event()

    # ------------------------------------------------------------------ write
    def index_later(self, inst: Instance, sentinel: Mapping[str, Any], *, verify: bool = False) -> None:
        """Queue the Instances-row write; a finished instance is written at once.

        `verify` (a client's Pending row): someone else may checkpoint the instance before the row
        is written, in another process too, so unless a later state of it is queued here
        meanwhile, the writer reads the sentinel first and writes what it holds then. Off the
        start's critical path, and usually not needed at all: the instance's first checkpoint in
        this process replaces the queued state within the delay."""
        iid = inst.instance_id
        self._pending[iid] = (inst, sentinel, inst.etag if verify else None)
        if iid not in self._writers:
            delay = 0.0 if inst.runtime_status.is_terminal else self.index_delay_seconds
            self._writers[iid] = asyncio.ensure_future(self._writer(iid, delay))

    async def _writer(self, iid: str, delay: float) -> None:
        failures = 0
        try:
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), delay)
            while iid in self._pending:
                inst, sentinel, verify = self._pending.pop(iid)
                try:
                    if verify is not None:
                        stored = await self._read_sentinel(sentinel["PartitionKey"])
                        if str(stored.metadata["etag"]) != verify:
                            sentinel, verify = stored, None
                except ResourceNotFoundError:
                    continue  # purged meanwhile (or the table is gone: the store writes back what it holds)
                except (HttpResponseError, ServiceRequestError):
                    written = False
                else:
                    written = await self.upsert(sentinel)
                if written:
                    failures = 0
                    continue
                # Storage unreachable: keep the latest state and try again, backing off, so a
                # finished instance is not listed as running forever.
                self._pending.setdefault(iid, (inst, sentinel, verify))
                failures += 1
                if failures > 12:
                    log.error("devhost: giving up updating the Instances row of %s", iid)
                    return
                await asyncio.sleep(min(0.5 * 2**failures, 30))
        finally:
            self._writers.pop(iid, None)

    async def flush(self) -> None:
        """Wait until every Instances row reflects the last checkpoint."""
        while self._writers:
            self._flush.set()
            await asyncio.gather(*list(self._writers.values()), return_exceptions=True)
        self._flush.clear()

    async def upsert(self, sentinel: Mapping[str, Any]) -> bool:
        """Write the row derived from `sentinel`; False if storage failed (logged)."""
        entity = rows.instance_row(sentinel, self.hub)
        for attempt in range(2):
            try:
                try:  # the request upsert_entity sends, without its per-request serialiser
                    await batch.write_one(self.table, ("upsert", entity, {"mode": UpdateMode.REPLACE}))
                except TypeError:  # a column read back from storage with a type `batch` does not write
                    await self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)
                return True
            except (HttpResponseError, ServiceRequestError) as exc:
                # The checkpoint itself is committed (and `load` reads the sentinel), so a failure
                # here must not make the dispatcher redo the work item: only queries lag behind.
                if attempt:
                    log.warning("devhost: updating the Instances row of %s failed: %s", entity.get("InstanceId"), exc)
        return False

    async def delete(self, pk: str) -> bool:
        """Delete the row; True if there was one."""
        try:
            await self.table.get_entity(pk, "", select=["RowKey"])
        except ResourceNotFoundError:
            return False
        # (delete_entity does not report a missing entity, hence the read)
        await self.table.delete_entity(pk, "")
        return True

    # ------------------------------------------------------------------- read
    async def query(self, query: InstanceQuery) -> QueryPage:
        await self.flush()
        clauses = ["RowKey eq ''"]
        params: dict[str, Any] = {}
        if query.entities:
            clauses.append("PartitionKey ge '@' and PartitionKey lt 'A'")
        elif query.entities is not None:
            clauses.append("(PartitionKey lt '@' or PartitionKey ge 'A')")
        if query.instance_id_prefix:
            prefix = sanitize_key(query.instance_id_prefix)
            clauses.append(
                f"PartitionKey ge {_odata_str(prefix)} and PartitionKey lt {_odata_str(_prefix_upper_bound(prefix))}"
            )
        if query.runtime_status:
            clauses.append(
                "("
                + " or ".join(f"RuntimeStatus eq {_odata_str(RuntimeStatus(s).value)}" for s in query.runtime_status)
                + ")"
            )
        if query.created_from is not None:
            clauses.append("CreatedTime ge @created_from")
            params["created_from"] = query.created_from
        if query.created_to is not None:
            clauses.append("CreatedTime le @created_to")
            params["created_to"] = query.created_to
        token = json.loads(query.continuation) if query.continuation else None
        pages = self.table.query_entities(
            " and ".join(clauses), parameters=params, results_per_page=max(1, min(query.page_size, 1000))
        ).by_page(token)
        found_rows: list[Any] = []
        async for page in pages:
            found_rows = [row async for row in page]
            break
        continuation = pages.continuation_token  # type: ignore[attr-defined]
        now = self.clock.now()
        found = await asyncio.gather(*(rows.row_instance(r, self._blobs, now, engine=False) for r in found_rows))
        instances = [inst for inst in found if query.matches(inst)]  # name (case-insensitive) is client-side
        return QueryPage(instances, json.dumps(continuation) if continuation else None)

    async def entity_stamps(self) -> dict[str, tuple[Any, ...]]:
        """Per entity partition, what its Instances row says (status, last update, exists)."""
        query = f"RowKey eq '' and {rows.ENTITY_PARTITIONS}"
        return {
            row["PartitionKey"]: rows.stamp(row)
            async for row in self.table.query_entities(
                query, select=["PartitionKey", "RuntimeStatus", "LastUpdatedTime", "EntityExists"]
            )
        }

    async def active_partitions(self) -> list[str]:
        """Partition keys of orchestration rows that say they are not finished."""
        active = " or ".join(f"RuntimeStatus eq '{s.value}'" for s in RuntimeStatus if not s.is_terminal)
        not_entity = "(PartitionKey lt '@' or PartitionKey ge 'A')"
        return [
            row["PartitionKey"]
            async for row in self.table.query_entities(
                f"RowKey eq '' and ({active}) and {not_entity}", select=["PartitionKey"]
            )
        ]
