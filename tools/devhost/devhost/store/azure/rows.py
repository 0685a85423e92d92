"""The row codec: history events, sentinel rows and Instances rows to and from table entities
(DTFx's `TableEntityConverter` and the columns of `AzureTableTrackingStore`).

Why the sentinel carries everything: the sentinel's ETag is the instance's concurrency token, and
only rows of one partition can be written atomically. So the instance fields and the engine's
bookkeeping (`Instance.engine`, `buffered`, entity state) live as columns on the sentinel, written
in the same entity-group transaction as the new history rows. All but one: the engine's action
numbers (`EngineState.ids`, one per action) grow with the history, so they live in `ids-` rows of
`IDS_CHUNK` beside the sentinel (which says how many, `IdsLength`) and a checkpoint writes only
the chunk it appended to (hubs written before hold them in the `Engine` column, still read).
Encoding is pure; decoding reads the blobs that values too large for a property were moved to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ...history import EVENT_NAMES, EVENT_TYPES_BY_NAME, Event, EventType, RuntimeStatus, format_ts, parse_ts
from ...model import EngineState, Instance
from .blobs import LargeMessages
from .layout import IDS_CHUNK, MAX_PROPERTY_UTF16_BYTES, SENTINEL, ids_row_key, row_key, unsanitize_key

_ROW_META = frozenset({"PartitionKey", "RowKey", "Timestamp", "ExecutionId", "_Nulls", "_Json"})

# Instance fields with their own sentinel columns; any other field (added to the model later)
# travels in the `Extra` JSON column, so nothing is silently dropped.
_INSTANCE_COLUMNS = frozenset(
    {
        "instance_id",
        "name",
        "runtime_status",
        "execution_id",
        "created_time",
        "last_updated_time",
        "input",
        "output",
        "custom_status",
        "completed_time",
        "parent_instance_id",
        "history",
        "engine",
        "buffered",
        "generation",
        "entity_exists",
        "entity_state",
        "etag",
    }
)
EXTRA_FIELDS = tuple(f.name for f in dataclasses.fields(Instance) if f.name not in _INSTANCE_COLUMNS)
# The Instances row (the query index, §7.2) copies these sentinel columns (blob names shared).
_INDEX_COLUMNS = (
    "InstanceId",
    "Name",
    "ExecutionId",
    "Input",
    "Output",
    "CustomStatus",
    "RuntimeStatus",
    "CreatedTime",
    "LastUpdatedTime",
    "CompletedTime",
    "Generation",
    "ParentInstanceId",
    "Extra",
    "EntityExists",
    "EntityState",
)


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
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )


def encode_extra(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": format_ts(value)}
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in the sentinel's Extra column")


def decode_extra(value: dict[str, Any]) -> Any:
    return parse_ts(value["$datetime"]) if set(value) == {"$datetime"} else value


def restore_played(events: list[Event]) -> list[Event]:
    """IsPlayed as the engine had it: true before the last OrchestratorStarted (see the history table's write)."""
    last_os = max(
        (i for i, ev in enumerate(events) if ev.get("EventType") == EventType.ORCHESTRATOR_STARTED), default=0
    )
    for ev in events[:last_os]:
        if ev.get("EventType") != EventType.ORCHESTRATOR_STARTED:
            ev["IsPlayed"] = True
    return events


def differs_beyond_played(new: Event, old: Event) -> bool:
    if new == old:
        return False
    return {**new, "IsPlayed": None} != {**old, "IsPlayed": None}


def blob_names(row: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(v for k, v in row.items() if k.endswith("BlobName") and v)


# Entity partitions: ids start with '@' (the next character after '@' in ordinal order is 'A').
ENTITY_PARTITIONS = "PartitionKey ge '@' and PartitionKey lt 'A'"


def stamp(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must agree between a sentinel and its Instances row (see `InstancesTable.stamps`)."""
    when = _dt(row.get("LastUpdatedTime"))
    return (row.get("RuntimeStatus"), when, bool(row.get("EntityExists")))


# ------------------------------------------------------------------ encode
def large_value(entity: dict[str, Any], column: str, text: str, blob_prefix: str, uploads: dict[str, str]) -> None:
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


def event_row(pk: str, position: int, execution_id: str, ev: Event, uploads: dict[str, str]) -> dict[str, Any]:
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
            if -(2**31) <= value < 2**31:
                entity[column] = value
            else:
                entity[column] = json.dumps(value)
                jsons.append(key)
        elif isinstance(value, str):
            large_value(entity, column, value, prefix, uploads)
        else:
            large_value(entity, column, json.dumps(value, separators=(",", ":")), prefix, uploads)
            jsons.append(key)
    if nulls:
        entity["_Nulls"] = ",".join(nulls)
    if jsons:
        entity["_Json"] = ",".join(jsons)
    return entity


def sentinel_row(
    inst: Instance, pk: str, uploads: dict[str, str], complete: bool, now: datetime, ids_in_rows: bool = False
) -> dict[str, Any]:
    """The sentinel; with `ids_in_rows` the engine's `ids` are in the `ids-` rows (`IdsLength` of
    them), else in the `Engine` column as hubs written before those rows existed hold them."""
    entity: dict[str, Any] = {
        "PartitionKey": pk,
        "RowKey": SENTINEL,
        "ExecutionId": inst.execution_id,
        "IsCheckpointComplete": complete,
        "CheckpointCompletedTimestamp": now,
        "HistoryLength": len(inst.history),
        "InstanceId": inst.instance_id,
        "RuntimeStatus": inst.runtime_status.value,
        "CreatedTime": inst.created_time,
        "LastUpdatedTime": inst.last_updated_time,
        "Generation": inst.generation,
        "EntityExists": inst.entity_exists,
    }
    prefix = f"{pk}/instance"
    for column, text in (
        ("Name", inst.name),
        ("Input", inst.input),
        ("Output", inst.output),
        ("CustomStatus", inst.custom_status),
        ("ParentInstanceId", inst.parent_instance_id),
        ("EntityState", inst.entity_state),
    ):
        if text is not None:
            large_value(entity, column, text, prefix, uploads)
    if inst.completed_time is not None:
        entity["CompletedTime"] = inst.completed_time
    engine = inst.engine.to_json()
    if ids_in_rows:
        engine.pop("ids", None)
        entity["IdsLength"] = len(inst.engine.ids)
    if inst.engine.outbox:
        entity["Outbox"] = True  # found by `HistoryTable.unfinished` even once the instance finished
    if engine:
        large_value(entity, "Engine", json.dumps(engine, separators=(",", ":")), prefix, uploads)
    if inst.buffered:
        large_value(entity, "Buffered", json.dumps(inst.buffered, separators=(",", ":")), prefix, uploads)
    if EXTRA_FIELDS:
        extra = {name: getattr(inst, name) for name in EXTRA_FIELDS}
        large_value(entity, "Extra", json.dumps(extra, default=encode_extra), prefix, uploads)
    return entity


def ids_chunks(count: int) -> int:
    return -(-count // IDS_CHUNK)


def changed_ids_chunks(new: list[int | None], old: list[int | None] | None) -> list[int]:
    """Chunks of `new` that differ from what `old` (None: unknown) stored."""
    if old is None:
        return list(range(ids_chunks(len(new))))
    first = 0
    if new[: len(old)] == old:  # appended to (the usual case): earlier chunks are unchanged
        first = len(old) // IDS_CHUNK
    return [
        c
        for c in range(first, ids_chunks(len(new)))
        if new[c * IDS_CHUNK : (c + 1) * IDS_CHUNK] != old[c * IDS_CHUNK : (c + 1) * IDS_CHUNK]
    ]


def ids_row(pk: str, execution_id: str, ids: list[int | None], chunk: int) -> dict[str, Any]:
    part = ids[chunk * IDS_CHUNK : (chunk + 1) * IDS_CHUNK]
    return {
        "PartitionKey": pk,
        "RowKey": ids_row_key(chunk),
        "ExecutionId": execution_id,
        "Ids": json.dumps(part, separators=(",", ":")),
    }


def ids_from_rows(found: Sequence[Mapping[str, Any]], length: int) -> list[int | None]:
    """The `ids` the sentinel's `IdsLength` says; ValueError when a row is missing."""
    by_key = {row["RowKey"]: row for row in found}
    ids: list[int | None] = []
    for chunk in range(ids_chunks(length)):
        row = by_key.get(ids_row_key(chunk))
        if row is None:
            raise ValueError(f"row {ids_row_key(chunk)} of {length} action numbers is missing")
        ids.extend(json.loads(row["Ids"]))
    if len(ids) < length:
        raise ValueError(f"{len(ids)} action numbers stored, the sentinel says {length}")
    return ids[:length]


def instance_row(sentinel: Mapping[str, Any], hub: str) -> dict[str, Any]:
    """The Instances row (the query index, §7.2) derived from the sentinel's columns (blob names shared)."""
    entity: dict[str, Any] = {"PartitionKey": sentinel["PartitionKey"], "RowKey": "", "Version": "", "TaskHubName": hub}
    for column in _INDEX_COLUMNS:
        if column in sentinel:
            entity[column] = sentinel[column]
        if column + "BlobName" in sentinel:
            entity[column + "BlobName"] = sentinel[column + "BlobName"]
    return entity


# ------------------------------------------------------------------ decode
async def row_event(row: Mapping[str, Any], blobs: LargeMessages) -> Event:
    ev: Event = {}
    for key, value in row.items():
        if key in _ROW_META or (key.endswith("BlobName") and key[:-8] in row):
            continue
        if key == "EventType":
            ev[key] = EVENT_TYPES_BY_NAME.get(value, int(value) if str(value).isdigit() else value)
        elif key == "_Timestamp":
            ev["Timestamp"] = value
        elif key + "BlobName" in row:
            ev[key] = await blobs.get(row[key + "BlobName"])
        else:
            ev[key] = value
    for key in filter(None, (row.get("_Json") or "").split(",")):
        if key in ev:
            ev[key] = json.loads(ev[key])
    for key in filter(None, (row.get("_Nulls") or "").split(",")):
        ev[key] = None
    return ev


async def _text_column(row: Mapping[str, Any], column: str, blobs: LargeMessages) -> str | None:
    blob = row.get(column + "BlobName")
    if blob:
        try:
            return await blobs.get(blob)
        except ResourceNotFoundError:  # a query racing a checkpoint that replaced the blob
            return None
    value = row.get(column)
    return None if value is None else str(value)


async def row_instance(row: Mapping[str, Any], blobs: LargeMessages, now: datetime, *, engine: bool) -> Instance:
    """An Instance from a sentinel row (engine=True) or an Instances row (status only)."""
    texts = await asyncio.gather(
        *(
            _text_column(row, c, blobs)
            for c in (
                "Name",
                "Input",
                "Output",
                "CustomStatus",
                "ParentInstanceId",
                "EntityState",
                "Engine",
                "Buffered",
                "Extra",
            )
        )
    )
    name, input_text, output, custom, parent, entity_state, engine_text, buffered_text, extra_text = texts
    instance_id = row.get("InstanceId") or unsanitize_key(row["PartitionKey"])
    created = _dt(row.get("CreatedTime")) or now
    inst = Instance(
        instance_id=instance_id,
        name=name or "",
        runtime_status=RuntimeStatus(row.get("RuntimeStatus", "Pending")),
        execution_id=row.get("ExecutionId") or "",
        created_time=created,
        last_updated_time=_dt(row.get("LastUpdatedTime")) or created,
        input=input_text,
        output=output,
        custom_status=custom,
        completed_time=_dt(row.get("CompletedTime")),
        parent_instance_id=parent,
        generation=int(row.get("Generation") or 0),
        entity_exists=bool(row.get("EntityExists")),
        entity_state=entity_state,
    )
    if extra_text:
        for key, value in json.loads(extra_text, object_hook=decode_extra).items():
            if key in EXTRA_FIELDS:
                setattr(inst, key, value)
    if engine:
        inst.engine = EngineState.from_json(json.loads(engine_text)) if engine_text else EngineState()
        inst.buffered = json.loads(buffered_text) if buffered_text else []
        inst.etag = row.metadata["etag"] if hasattr(row, "metadata") else None
    return inst
