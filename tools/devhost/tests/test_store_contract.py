"""One contract for every task-hub store: the memory store and Azure Storage (on a private Azurite).

Each test gets a fresh hub. `Hub.reopen()` gives a second store on the same hub (for
Azure a new connection with an empty cache), so reads prove what was really persisted.

Tests internals (not devhost's public API): imports `devhost.azurite`, `devhost.client`, `devhost.clock`,
`devhost.dispatcher`, `devhost.history`, `devhost.index`, `devhost.model`, `devhost.store.azure`,
`devhost.store.base`, `devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest
from azure.core.exceptions import ServiceResponseError
from azure.data.tables import UpdateMode

from devhost import history as h
from devhost.client import TaskHubClient
from devhost.clock import VirtualClock
from devhost.dispatcher import Dispatcher, DispatcherOptions
from devhost.history import RuntimeStatus
from devhost.index import AppIndex
from devhost.model import EngineState, Instance, Message, RetryState, new_guid
from devhost.store.azure import (
    AzureStorageStore,
    HubInUse,
    HubOfAnotherHost,
    StorageUnavailable,
    control_queue_name,
    new_hub_name,
    open_store,
    sanitize_key,
    unsanitize_key,
)
from devhost.store.base import ConcurrencyError, InstanceQuery, Store
from devhost.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG = "x" * (70 * 1024)  # > 64 KiB: too large for a table property or a queue message


@dataclass
class Hub:
    kind: str
    store: Store
    connection_string: str | None = None
    hub_name: str | None = None
    extra: list[Store] = field(default_factory=list)

    async def reopen(self) -> Store:
        """Another store on the same hub: for Azure a new connection whose cache is empty."""
        if self.kind == "memory":
            return self.store
        assert self.connection_string and self.hub_name
        store = await open_store({"AzureWebJobsStorage": self.connection_string}, self.hub_name)
        self.extra.append(store)
        return store

    async def pass_time(self, seconds: float) -> None:
        """Let `seconds` go by: virtual for memory, real for Azure (queue visibility is server time)."""
        clock = self.store.clock
        if isinstance(clock, VirtualClock):
            clock.advance(timedelta(seconds=seconds))
        else:
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        for store in [self.store, *self.extra]:
            await store.close()


@pytest.fixture(params=["memory", pytest.param("azure", marks=pytest.mark.azurite)])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    if request.param == "memory":
        result = Hub("memory", MemoryStore(VirtualClock(T0)))
    else:
        conn = request.getfixturevalue("azurite_connection_string")
        name = new_hub_name("t")
        result = Hub("azure", await open_store({"AzureWebJobsStorage": conn}, name), conn, name)
    try:
        yield result
    finally:
        await result.close()


def _instance(store: Store, iid: str | None = None, **fields: Any) -> Instance:
    now = store.clock.now()
    values: dict[str, Any] = dict(
        instance_id=iid or new_guid(),
        name="flow",
        runtime_status=RuntimeStatus.PENDING,
        execution_id=new_guid(),
        created_time=now,
        last_updated_time=now,
    )
    values.update(fields)
    return Instance(**values)


def _events(store: Store, n: int, start: int = 0) -> list[dict[str, Any]]:
    now = store.clock.now()
    return [h.task_scheduled(now, start + i, "step", json.dumps(start + i)) for i in range(n)]


def _started(store: Store, inst: Instance) -> list[dict[str, Any]]:
    now = store.clock.now()
    return [
        h.orchestrator_started(now),
        h.execution_started(
            now, instance_id=inst.instance_id, execution_id=inst.execution_id, name=inst.name, input_text=inst.input
        ),
    ]


async def _drain(
    hub: Hub, queue: str = "control", want: int = 1, timeout: float = 10.0, visibility: float = 300.0
) -> list[Message]:
    """Receive until `want` messages arrived (queues promise no batch sizes, only eventual delivery)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batch = await hub.store.dequeue(queue, 32, visibility)  # type: ignore[arg-type]
        got.extend(batch)
        if not batch:
            await asyncio.sleep(0.05)
    return got


# ------------------------------------------------------------------ instances
def test_engine_state_keeps_its_stored_shape() -> None:
    """Hubs written before the engine state was typed hold a plain JSON object with these keys
    (retries keyed by the sequence number as text); it must load, and be written back, unchanged."""
    stored = {
        "next_id": 7,
        "ids": [0, None, 1, 2],
        "played": 12,
        "last_os": "2026-01-01T00:00:05.000000Z",
        "msgs": ["a", "b"],
        "rewound": [1],
        "retries": {
            "2": {
                "kind": "sub",
                "name": "child",
                "input": [1],
                "iid": "c1",
                "first": 500,
                "coef": 1.5,
                "max_interval": 2000,
                "max": 4,
                "attempt": 2,
                "current": 5,
                "timer": None,
            }
        },
    }
    state = EngineState.from_json(json.loads(json.dumps(stored)))
    assert state.retries[2].current == 5 and state.retries[2].kind == "sub" and state.ids[1] is None
    assert state.to_json() == stored
    assert EngineState.from_json({"handled": ["r1"]}).to_json() == {"handled": ["r1"]}
    assert EngineState().to_json() == {}  # nothing set: no Engine column at all


async def test_create_load_round_trip(hub: Hub) -> None:
    store = hub.store
    inst = _instance(
        store,
        "order/42#a?",
        input='{"a": 1}',
        custom_status='"warm"',
        generation=3,
        engine=EngineState(
            next_id=4,
            ids=[0, None, 1],
            msgs=["m1"],
            last_os="2026-01-01T00:00:00Z",
            retries={1: RetryState("activity", "step", {"n": 1}, None, 1000, 2.0, None, 3, 2, 3, timer=2)},
        ),
        buffered=[h.event_raised(T0, "go", "1")],
    )
    await store.create(inst)
    assert inst.etag
    for reader in (store, await hub.reopen()):
        got = await reader.load(inst.instance_id)
        assert got is not None
        assert (got.instance_id, got.name, got.runtime_status, got.execution_id) == (
            inst.instance_id,
            "flow",
            RuntimeStatus.PENDING,
            inst.execution_id,
        )
        assert (got.input, got.custom_status, got.generation, got.engine, got.buffered) == (
            inst.input,
            inst.custom_status,
            3,
            inst.engine,
            inst.buffered,
        )
        assert got.created_time == inst.created_time and got.last_updated_time == inst.last_updated_time
        assert got.history == [] and got.etag == inst.etag
    assert await store.load("nope") is None
    # Creating again needs the current etag: None means "must not exist".
    with pytest.raises(ConcurrencyError):
        await store.create(_instance(store, inst.instance_id))
    again = _instance(store, inst.instance_id, generation=4)
    again.etag = inst.etag
    await store.create(again)
    loaded = await store.load(inst.instance_id, history=False)
    assert loaded is not None and loaded.generation == 4 and loaded.etag == again.etag != inst.etag


async def test_stale_etag_checkpoint_raises_and_loses_nothing(hub: Hub) -> None:
    store = hub.store
    inst = _instance(store)
    inst.history = _started(store, inst)
    await store.checkpoint(inst, new_events_from=0, history_reset=True)
    a = await store.load(inst.instance_id)
    b = await store.load(inst.instance_id)
    assert a is not None and b is not None and a.etag == b.etag
    a.history += _events(store, 2)
    a.runtime_status = RuntimeStatus.RUNNING
    await store.checkpoint(a, new_events_from=2, history_reset=False)
    b.history += _events(store, 3, start=10)
    with pytest.raises(ConcurrencyError):
        await store.checkpoint(b, new_events_from=2, history_reset=False)
    for reader in (store, await hub.reopen()):
        got = await reader.load(inst.instance_id)
        assert got is not None and got.history == a.history and got.runtime_status == RuntimeStatus.RUNNING
    # A brand-new instance checkpointed twice "as new": the second one loses.
    fresh = _instance(store)
    twin = _instance(store, fresh.instance_id)
    await store.checkpoint(fresh, new_events_from=0, history_reset=True)
    with pytest.raises(ConcurrencyError):
        await store.checkpoint(twin, new_events_from=0, history_reset=True)


async def test_incremental_checkpoints_load_full_history_in_order(hub: Hub) -> None:
    store = hub.store
    inst = _instance(store, engine=EngineState())
    inst.history = _started(store, inst)
    await store.checkpoint(inst, new_events_from=0, history_reset=True)
    expected = list(inst.history)
    for round_no in range(5):
        cur = await store.load(inst.instance_id)
        assert cur is not None and cur.history == expected
        start = len(cur.history)
        # The engine replaces earlier events when it marks them played. A store may skip writing
        # a change of IsPlayed alone (replay counts everything before the episode's
        # OrchestratorStarted as played), so IsPlayed is compared apart, below.
        cur.history = [{**ev, "IsPlayed": True} if i >= start - 2 else ev for i, ev in enumerate(cur.history)]
        cur.history += _events(store, 30 + round_no * 25, start=start)  # crosses the 100-op batch limit
        cur.engine = EngineState(played=start, next_id=round_no)
        await store.checkpoint(cur, new_events_from=start, history_reset=False)
        expected = list(cur.history)
    assert cur is not None
    for reader in (store, await hub.reopen()):
        got = await reader.load(inst.instance_id)
        assert got is not None
        assert [ev["EventId"] for ev in got.history] == [ev["EventId"] for ev in expected]
        assert _without_played(got.history) == _without_played(expected) and got.engine == cur.engine
        if reader is store:  # from its own cache a store returns exactly what it wrote
            assert got.history == expected


def _without_played(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in ev.items() if k != "IsPlayed"} for ev in events]


async def test_history_reset_hides_stale_rows(hub: Hub) -> None:
    store = hub.store
    inst = _instance(store)
    inst.history = _started(store, inst) + _events(store, 230)
    await store.checkpoint(inst, new_events_from=0, history_reset=True)
    for new_events in (120, 0):  # shorter executions overwrite from position 0 (in several batches, then one)
        cur = await store.load(inst.instance_id)
        assert cur is not None
        cur.execution_id = new_guid()  # continue-as-new
        cur.history = _started(store, cur) + _events(store, new_events)
        await store.checkpoint(cur, new_events_from=0, history_reset=True)
        for reader in (store, await hub.reopen()):
            got = await reader.load(inst.instance_id)
            assert got is not None and got.execution_id == cur.execution_id
            assert got.history == cur.history and len(got.history) == 2 + new_events


async def test_action_numbers_are_written_per_chunk_not_per_history(azurite_connection_string: str) -> None:
    """A checkpoint writes O(new work): the engine's action numbers (`EngineState.ids`, one per action)
    live in `ids-` rows of 256 beside the sentinel, and a checkpoint sends only the chunk(s) it
    appended to, never the whole list in the sentinel's Engine column (which grew by one entry per
    action and would spill to a blob on every checkpoint). Hubs written before keep the numbers in
    the Engine column: they load, and their next checkpoint moves them into rows. Numbers
    rewritten (a realignment) commit with the sentinel or, when too many chunks changed, in the
    Engine column for that checkpoint."""
    conn = {"AzureWebJobsStorage": azurite_connection_string}
    hub_name = new_hub_name("ids")
    store = await open_store(conn, hub_name)
    sent: list[list[str]] = []
    transact = store.history.transact

    async def counting(operations: Any) -> Any:
        sent.append([op[1]["RowKey"] for op in operations])
        return await transact(operations)

    store.history.transact = counting  # type: ignore[method-assign]
    inst = _instance(store)
    inst.history = _started(store, inst)
    await store.checkpoint(inst, new_events_from=0, history_reset=True)

    async def fresh_load() -> Instance:
        other = await open_store(conn, hub_name)
        try:
            got = await other.load(inst.instance_id)
        finally:
            await other.close()
        assert got is not None
        return got

    async def raw_sentinel() -> dict[str, Any]:
        return dict(await store.history.sentinel(sanitize_key(inst.instance_id)))

    try:
        for step in range(300):  # a chain: one action, one number, per checkpoint
            start = len(inst.history)
            inst.history += _events(store, 1, start=step)
            inst.engine.ids.append(None if step % 7 == 3 else step)
            inst.engine.next_id = step + 1
            sent.clear()
            await store.checkpoint(inst, new_events_from=start, history_reset=False)
            ids_rows = [rk for batch in sent for rk in batch if rk.startswith("ids-")]
            assert ids_rows == [f"ids-{step // 256:08X}"], (step, ids_rows)
        row = await raw_sentinel()
        assert row["IdsLength"] == 300 and "ids" not in json.loads(row["Engine"])
        assert len(row["Engine"]) < 100  # no longer one entry per action
        assert (await fresh_load()).engine == inst.engine

        # A hub written before: the numbers in the Engine column, no IdsLength.
        old_shape = {k: v for k, v in row.items() if k != "IdsLength"}
        old_shape["Engine"] = json.dumps(inst.engine.to_json(), separators=(",", ":"))
        await store.history.table.update_entity(old_shape, mode=UpdateMode.REPLACE)
        store.forget()
        loaded = await store.load(inst.instance_id)
        assert loaded is not None and loaded.engine == inst.engine and loaded.history == inst.history
        loaded.engine.ids.append(300)
        sent.clear()
        await store.checkpoint(loaded, new_events_from=len(loaded.history), history_reset=False)
        assert [rk for rk in sent[-1] if rk.startswith("ids-")] == [f"ids-{c:08X}" for c in range(2)]
        assert (await raw_sentinel())["IdsLength"] == 301 and (await fresh_load()).engine == loaded.engine

        # Numbers rewritten across more chunks than fit beside the sentinel: the Engine column, once.
        loaded.engine.ids = [n + 1 if n is not None else None for n in range(33 * 256)]
        await store.checkpoint(loaded, new_events_from=len(loaded.history), history_reset=False)
        row = await raw_sentinel()
        assert "IdsLength" not in row and row.get("EngineBlobName")  # that large, it spills to a blob
        assert (await fresh_load()).engine == loaded.engine
        loaded.engine.ids = [None, *loaded.engine.ids[1:], 5]
        await store.checkpoint(loaded, new_events_from=len(loaded.history), history_reset=False)
        row = await raw_sentinel()
        assert row["IdsLength"] == 33 * 256 + 1 and "ids" not in json.loads(row["Engine"])
        assert "EngineBlobName" not in row
        assert (await fresh_load()).engine == loaded.engine
    finally:
        await store.close()


# ---------------------------------------------------------------------- queues
async def test_delayed_message_is_not_visible_before_due(hub: Hub) -> None:
    store = hub.store
    now = store.clock.now()
    due = now + timedelta(seconds=1.5)
    timer = Message("inst-1", h.timer_fired(now, 0, due), visible_at=due)
    await store.enqueue([timer, Message("inst-2", h.event_raised(now, "now", None))])
    first = await _drain(hub, want=1)
    assert [m.instance_id for m in first] == ["inst-2"]
    assert await store.dequeue("control", 32) == []
    await store.ack(first)
    await hub.pass_time(2.0)
    later = await _drain(hub, want=1)
    assert [m.id for m in later] == [timer.id] and later[0].event == timer.event
    assert later[0].visible_at is not None and store.clock.now() >= later[0].visible_at
    await store.ack(later)


async def test_dequeue_batch_and_ack_removes(hub: Hub) -> None:
    store = hub.store
    now = store.clock.now()
    sent = [Message(f"inst-{i}", h.event_raised(now, "e", json.dumps(i))) for i in range(40)]
    work = [Message(f"inst-{i}", h.task_scheduled(now, i, "step", None), queue="work") for i in range(3)]
    await store.enqueue(sent + work)
    got = await _drain(hub, want=40, visibility=2)
    assert sorted(m.id for m in got) == sorted(m.id for m in sent)
    assert {m.id: m.event for m in got} == {m.id: m.event for m in sent}
    assert all(m.dequeue_count == 1 for m in got)
    batch = await store.dequeue("work", 2, 2)
    assert 1 <= len(batch) <= 2 and all(m.queue == "work" for m in batch)
    rest = await _drain(hub, "work", want=3 - len(batch), visibility=2)
    await store.ack(got + batch + rest)
    await hub.pass_time(2.5)  # past the visibility timeout: acked messages do not come back
    assert await store.dequeue("control", 32) == []
    assert await store.dequeue("work", 32) == []


async def test_poison_moves_a_message_aside_for_good(hub: Hub) -> None:
    store = hub.store
    bad = Message("inst-p", h.event_raised(store.clock.now(), "e", "1"))
    await store.enqueue([bad])
    [got] = await _drain(hub, want=1, visibility=2)
    await store.poison([got])
    await hub.pass_time(2.5)  # past the visibility timeout: it does not come back
    assert await store.dequeue("control", 32) == []
    if isinstance(store, MemoryStore):
        assert [m.id for m in store.poisoned] == [bad.id]
    else:
        assert isinstance(store, AzureStorageStore)
        peeked = await store.queues.poison_client.peek_messages(max_messages=5)
        assert [json.loads(m.content)["id"] for m in peeked] == [bad.id]


async def test_abandon_makes_visible_again_and_counts(hub: Hub) -> None:
    store = hub.store
    msg = Message("inst-a", h.event_raised(store.clock.now(), "e", None), sender="@counter@k")
    await store.enqueue([msg])
    first = await _drain(hub)
    assert len(first) == 1 and first[0].dequeue_count == 1 and first[0].sender == "@counter@k"
    await store.abandon(first)
    again = await _drain(hub)
    assert [m.id for m in again] == [msg.id] and again[0].dequeue_count == 2
    await store.abandon(again, delay_seconds=1)
    assert await store.dequeue("control", 32) == []
    await hub.pass_time(1.5)
    third = await _drain(hub)
    assert third[0].dequeue_count == 3
    await store.ack(third)


# ----------------------------------------------------------------- query/purge
async def _query_all(store: Store, query: InstanceQuery) -> list[Instance]:
    out: list[Instance] = []
    pages = 0
    while True:
        page = await store.query(query)
        out.extend(page.instances)
        pages += 1
        assert pages < 50
        if not page.continuation:
            return out
        query.continuation = page.continuation


async def test_query_filters_and_paging(hub: Hub) -> None:
    store = hub.store
    base = T0 + timedelta(days=30)
    specs = [
        ("alpha-1", RuntimeStatus.COMPLETED, 0),
        ("alpha-2", RuntimeStatus.RUNNING, 1),
        ("alpha-3", RuntimeStatus.RUNNING, 2),
        ("beta-1", RuntimeStatus.FAILED, 3),
        ("beta-2", RuntimeStatus.RUNNING, 4),
        ("@counter@k1", RuntimeStatus.RUNNING, 5),
    ]
    for iid, status, day in specs:
        created = base + timedelta(days=day)
        inst = _instance(
            store,
            iid,
            runtime_status=status,
            created_time=created,
            last_updated_time=created,
            name="counter" if iid.startswith("@") else ("Flow" if iid.startswith("alpha") else "other"),
        )
        await store.create(inst)

    def ids(found: list[Instance]) -> list[str]:
        return sorted(i.instance_id for i in found)

    everything = await _query_all(store, InstanceQuery(page_size=2))
    assert ids(everything) == ["alpha-1", "alpha-2", "alpha-3", "beta-1", "beta-2"]
    page = await store.query(InstanceQuery(page_size=2))
    assert len(page.instances) <= 2 and page.continuation
    running = await _query_all(store, InstanceQuery(runtime_status=[RuntimeStatus.RUNNING], page_size=1))
    assert ids(running) == ["alpha-2", "alpha-3", "beta-2"]
    window = await _query_all(
        store, InstanceQuery(created_from=base + timedelta(days=1), created_to=base + timedelta(days=3))
    )
    assert ids(window) == ["alpha-2", "alpha-3", "beta-1"]
    prefixed = await _query_all(store, InstanceQuery(instance_id_prefix="alpha-", page_size=2))
    assert ids(prefixed) == ["alpha-1", "alpha-2", "alpha-3"]
    assert ids(await _query_all(store, InstanceQuery(name="flow"))) == ["alpha-1", "alpha-2", "alpha-3"]
    combined = await _query_all(
        store, InstanceQuery(runtime_status=[RuntimeStatus.RUNNING, RuntimeStatus.FAILED], instance_id_prefix="beta")
    )
    assert ids(combined) == ["beta-1", "beta-2"]
    entities = await _query_all(store, InstanceQuery(entities=True))
    assert ids(entities) == ["@counter@k1"]
    assert entities[0].runtime_status == RuntimeStatus.RUNNING and entities[0].history == []


async def test_purge(hub: Hub) -> None:
    store = hub.store
    inst = _instance(store, "to/purge", input=json.dumps(BIG))
    inst.history = _started(store, inst) + _events(store, 120)
    inst.runtime_status = RuntimeStatus.COMPLETED
    await store.checkpoint(inst, new_events_from=0, history_reset=True)
    keep = _instance(store, "to/keep")
    await store.create(keep)
    assert await store.purge("to/purge") == 1
    assert await store.load("to/purge") is None
    assert await (await hub.reopen()).load("to/purge") is None
    assert await store.purge("to/purge") == 0
    assert [i.instance_id for i in await _query_all(store, InstanceQuery())] == ["to/keep"]
    if isinstance(store, AzureStorageStore):  # no rows and no blobs left behind
        rows = [
            r
            async for r in store.history.table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": sanitize_key("to/purge")}
            )
        ]
        blobs = [b async for b in store.blobs.container.list_blobs(name_starts_with=sanitize_key("to/purge") + "/")]
        assert rows == [] and blobs == []
    # The id can be reused afterwards.
    await store.create(_instance(store, "to/purge"))


async def test_large_payloads_round_trip(hub: Hub) -> None:
    store = hub.store
    big_in, big_out = json.dumps(BIG + "in"), json.dumps("é€😀" * 20000)  # also multi-byte / surrogate pairs
    inst = _instance(
        store,
        input=big_in,
        custom_status=json.dumps(BIG),
        entity_state=None,
        engine=EngineState(msgs=[BIG]),
        buffered=[h.event_raised(T0, "big", json.dumps(BIG))],
    )
    await store.create(inst)
    cur = await store.load(inst.instance_id)
    assert cur is not None
    cur.history = _started(store, cur) + [h.task_completed(store.clock.now(), 0, big_out)]
    cur.output, cur.runtime_status = big_out, RuntimeStatus.COMPLETED
    await store.checkpoint(cur, new_events_from=0, history_reset=True)
    for reader in (store, await hub.reopen()):
        got = await reader.load(inst.instance_id)
        assert got is not None
        assert (got.input, got.output, got.custom_status) == (big_in, big_out, json.dumps(BIG))
        assert got.engine == EngineState(msgs=[BIG]) and got.buffered == inst.buffered and got.history == cur.history
    listed = await _query_all(store, InstanceQuery(instance_id_prefix=inst.instance_id))
    assert [(i.input, i.output) for i in listed] == [(big_in, big_out)]
    now = store.clock.now()
    msg = Message(inst.instance_id, h.event_raised(now, "payload", json.dumps(BIG)), execution_id=cur.execution_id)
    await store.enqueue([msg])
    got_msgs = await _drain(hub)
    assert [m.event for m in got_msgs] == [msg.event] and got_msgs[0].execution_id == cur.execution_id
    await store.ack(got_msgs)


# --------------------------------------------------------------- Azure-only bits
def test_fields_added_to_the_model_later_are_kept() -> None:
    from devhost.store.azure.rows import decode_extra as _decode_extra
    from devhost.store.azure.rows import encode_extra as _encode_extra

    when = datetime(2026, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
    text = json.dumps({"scheduled": when, "tags": {"a": "b"}, "status": RuntimeStatus.RUNNING}, default=_encode_extra)
    assert json.loads(text, object_hook=_decode_extra) == {"scheduled": when, "tags": {"a": "b"}, "status": "Running"}


def test_key_sanitation_and_routing() -> None:
    raw = "a/b\\c#d?e^f\x01g\x85"
    assert sanitize_key(raw) == "a^0b^1c^2d^3e^^f^\xc1g^\u0145"
    assert unsanitize_key(sanitize_key(raw)) == raw
    assert control_queue_name("abc", "MyHub") == "myhub-control-03"


class _LaggingClock:
    """A host clock running behind the storage service's clock."""

    def __init__(self, lag: float) -> None:
        self.lag = timedelta(seconds=lag)

    def now(self) -> datetime:
        return datetime.now(UTC) - self.lag


async def test_host_start_repairs_an_instances_row_left_stale_by_a_crash(azurite_connection_string: str) -> None:
    """A host killed between a checkpoint and its (lazy) Instances-row write leaves a row that
    still says Running; the next host's start (`unfinished`) rewrites it from the sentinel."""
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    store = await open_store(settings, new_hub_name("stale"))
    try:
        inst = _instance(store, runtime_status=RuntimeStatus.RUNNING)
        inst.history = _started(store, inst)
        await store.checkpoint(inst, new_events_from=0, history_reset=True)
        await store.flush_index()
        running_row = dict(await store.instances.table.get_entity(sanitize_key(inst.instance_id), ""))
        inst.runtime_status = RuntimeStatus.COMPLETED
        await store.checkpoint(inst, new_events_from=len(inst.history), history_reset=False)
        await store.flush_index()
        # What the crash leaves: the sentinel says Completed, the Instances row still the old Running.
        await store.instances.table.upsert_entity(running_row, mode=UpdateMode.REPLACE)
        reopened = await open_store(settings, store.hub)
        try:
            stale = await reopened.query(InstanceQuery(runtime_status=[RuntimeStatus.RUNNING]))
            assert [i.instance_id for i in stale.instances] == [inst.instance_id]
            assert await reopened.unfinished() == []
            fixed = await reopened.query(InstanceQuery(runtime_status=[RuntimeStatus.COMPLETED]))
            assert [i.instance_id for i in fixed.instances] == [inst.instance_id]
        finally:
            await reopened.close()
    finally:
        await store.close()


async def test_a_pending_row_written_late_never_hides_a_later_state(azurite_connection_string: str) -> None:
    """A client's Pending Instances row is written off the start's critical path; a host in another
    process may run the instance to its end before it lands. The listing must still say Completed:
    DTFx inserts its Pending row only if none exists, or replaces the one it read by ETag, and
    ignores the 409/412 (durabletask AzureTableTrackingStore.cs SetNewExecutionAsync, 810-827)."""
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    client = await open_store(settings, new_hub_name("late"))
    host = await open_store(settings, client.hub)
    try:
        inst = _instance(client)
        await client.create(inst)
        ran = await host.load(inst.instance_id)
        assert ran is not None
        ran.history = _started(host, ran)
        ran.runtime_status, ran.output = RuntimeStatus.COMPLETED, '"done"'
        await host.checkpoint(ran, new_events_from=0, history_reset=False)
        await host.flush_index()
        await client.flush_index()  # the client's Pending row lands last
        page = await host.query(InstanceQuery())
        assert [(i.instance_id, i.runtime_status, i.output) for i in page.instances] == [
            (inst.instance_id, RuntimeStatus.COMPLETED, '"done"')
        ]
    finally:
        await host.close()
        await client.close()


async def test_host_start_repairs_an_entity_listing_left_stale_by_a_crash(azurite_connection_string: str) -> None:
    """The same for entities: a lock released just before the crash must not be listed as held by
    the (finished) rollout that released it once the next host has started."""
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    store = await open_store(settings, new_hub_name("lock"))
    try:
        lock = _instance(
            store,
            "@target_lock@web-1",
            runtime_status=RuntimeStatus.RUNNING,
            entity_exists=True,
            entity_state=json.dumps("rollout-1"),
        )
        await store.checkpoint(lock, new_events_from=0, history_reset=True)
        await store.flush_index()
        held_row = dict(await store.instances.table.get_entity(sanitize_key(lock.instance_id), ""))
        lock.entity_exists, lock.entity_state = False, None  # released
        lock.last_updated_time = store.clock.now() + timedelta(seconds=1)
        await store.checkpoint(lock, new_events_from=0, history_reset=False)
        await store.flush_index()
        await store.instances.table.upsert_entity(held_row, mode=UpdateMode.REPLACE)  # the crash's leftover
        reopened = await open_store(settings, store.hub)
        try:
            listed = await reopened.query(InstanceQuery(entities=True))
            assert [(i.instance_id, i.entity_state) for i in listed.instances] == [
                (lock.instance_id, json.dumps("rollout-1"))
            ]
            await reopened.unfinished()  # what a host does when it starts
            listed = await reopened.query(InstanceQuery(entities=True))
            assert [(i.instance_id, i.entity_exists, i.entity_state) for i in listed.instances] == [
                (lock.instance_id, False, None)
            ]
        finally:
            await reopened.close()
    finally:
        await store.close()


async def test_message_is_never_processed_before_it_is_due(azurite_connection_string: str) -> None:
    """Queue delays are capped (7 days) and whole seconds: what surfaces early is hidden again."""
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    name = new_hub_name("due")
    sender = await open_store(settings, name)
    receiver = await open_store(settings, name, clock=_LaggingClock(30))
    try:
        now = sender.clock.now()
        far = now + timedelta(days=10)  # beyond what a queue can delay: enqueued with the maximum
        soon = now + timedelta(seconds=1)
        await sender.enqueue(
            [
                Message("i1", h.timer_fired(now, 0, far), visible_at=far),
                Message("i2", h.timer_fired(now, 1, soon), visible_at=soon),
            ]
        )
        await asyncio.sleep(1.5)
        # Visible in the queue, but due only in ~30 s by the receiver's clock: hidden again.
        assert await receiver.dequeue("control", 32) == []
        assert await sender.dequeue("control", 32) == []
        assert await sender.depth("control") == 2
    finally:
        await sender.close()
        await receiver.close()


async def test_foreign_queue_message_is_dropped_not_retried_forever(azurite_connection_string: str) -> None:
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("foreign"))
    try:
        await store.queues.clients[store.layout.control_queues[0]].send_message("not json")
        assert await store.dequeue("control", 32) == []
        assert await store.depth("control") == 0
    finally:
        await store.close()


async def test_a_hub_written_by_the_azure_functions_host_is_refused_in_one_line(
    azurite_connection_string: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Audit D1: DTFx's formats are not devhost's. A DTFx `MessageData` envelope (MessageData.cs: no
    `instance_id`) is left alone with one error line, not retried every 2 s; DTFx's partition leases
    (BlobPartitionLeaseManager.cs 30, 55: `taskhub.json`, `default/{queue}`) make the lease refuse."""
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("dtfx"))
    try:
        envelope = {
            "$type": "DurableTask.AzureStorage.MessageData, DurableTask.AzureStorage",
            "ActivityId": str(uuid.uuid4()),
            "SequenceNumber": 7,
            "Episode": 1,
            "TaskMessage": {
                "$type": "DurableTask.Core.TaskMessage, DurableTask.Core",
                "Event": {
                    "$type": "DurableTask.Core.History.ExecutionStartedEvent, DurableTask.Core",
                    "EventType": 0,
                    "EventId": -1,
                },
                "OrchestrationInstance": {"InstanceId": "abc", "ExecutionId": "e1"},
            },
        }
        queue = store.queues.clients[store.layout.control_queue_for("abc")]
        await queue.send_message(json.dumps(envelope))
        with caplog.at_level(logging.DEBUG, logger="devhost.store"):
            for _ in range(3):
                assert await store.dequeue("control", 32) == []
                store.queues._hot_at = dict.fromkeys(store.queues._hot_at, 0.0)  # poll again at once
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(errors) == 1 and "Azure Functions host" in errors[0] and store.hub in errors[0], errors
        assert await store.depth("control") == 1  # another host's message is not deleted

        leases = store.lease._blobs.get_container_client(store.layout.leases_container)
        await leases.upload_blob("taskhub.json", b'{"TaskHubName": "x", "PartitionCount": 4}')
        with pytest.raises(HubOfAnotherHost, match="belongs to the Azure Functions host"):
            await store.acquire_hub_lease()
    finally:
        await store.close()


async def test_repeated_large_message_after_ack_is_dropped(azurite_connection_string: str) -> None:
    """A send repeated after a crash shares the first copy's blob, which the first ack deleted."""
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("dup"))
    try:
        msg = Message("big-1", h.event_raised(store.clock.now(), "payload", json.dumps(BIG)))
        await store.enqueue([msg])
        first = await store.dequeue("control", 32)
        assert [m.id for m in first] == [msg.id]
        await store.ack(first)
        await store.enqueue([msg])  # the blob is written again: a true repeat is still delivered
        again = await store.dequeue("control", 32)
        assert [m.event for m in again] == [msg.event]
        await store.enqueue([msg])
        await store.ack(again)  # ...and this ack removes the blob the third copy points to
        assert await store.dequeue("control", 32) == []
        assert await store.depth("control") == 0
    finally:
        await store.close()


async def test_connection_settings() -> None:
    from devhost.store.azure.connection import clients as _clients

    dev = _clients({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "AzureWebJobsStorage")
    ident = _clients({"Storage__accountName": "acct", "Storage__queueServiceUri": "https://q.example/"}, "Storage")
    try:
        assert (dev.tables.url, dev.queues.url, dev.blobs.url) == (
            "http://127.0.0.1:10002/devstoreaccount1",
            "http://127.0.0.1:10001/devstoreaccount1/",
            "http://127.0.0.1:10000/devstoreaccount1/",
        )
        assert ident.tables.url.startswith("https://acct.table.core.windows.net")
        assert ident.queues.url.startswith("https://q.example")
        assert ident.blobs.url.startswith("https://acct.blob.core.windows.net")
        assert ident.credential is not None
    finally:
        for endpoints in (dev, ident):
            for client in (endpoints.tables, endpoints.queues, endpoints.blobs):
                await client.close()
            if endpoints.credential is not None:
                await endpoints.credential.close()


async def test_unreachable_storage_is_one_clear_error() -> None:
    from devhost.azurite import connection_string, free_port

    port = free_port()
    with pytest.raises(StorageUnavailable) as info:
        await open_store({"AzureWebJobsStorage": connection_string(port, port, port)}, "Unreachable")
    assert f"127.0.0.1:{port}" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(StorageUnavailable, match="AzureWebJobsStorage"):
        await open_store({}, "NoSetting")


async def test_second_host_on_same_hub_is_refused(azurite_connection_string: str) -> None:
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    name = new_hub_name("lease")
    first = await open_store(settings, name)
    second = await open_store(settings, name)
    try:
        await first.acquire_hub_lease()
        with pytest.raises(HubInUse, match=name):
            await second.acquire_hub_lease()
        await first.release_hub_lease()
        await second.acquire_hub_lease()
    finally:
        await first.close()
        await second.close()


# ------------------------------------------------------------------ end to end
app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def e2e_chain(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    value = 0
    for _ in range(ctx.get_input()):
        value = yield ctx.call_activity("e2e_step", value)
    return value


@app.orchestration_trigger(context_name="ctx")
def e2e_fan(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    results = yield ctx.task_all([ctx.call_activity("e2e_step", i) for i in range(ctx.get_input())])
    return sum(results)


@app.orchestration_trigger(context_name="ctx")
def e2e_timer(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    after = yield ctx.call_activity("e2e_step", 41)
    return after


@app.activity_trigger(input_name="value")
def e2e_step(value: int) -> int:
    return value + 1


@app.entity_trigger(context_name="context", entity_name="E2eCounter")
def e2e_counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_state(value)


_INDEX: AppIndex | None = None


def _index() -> AppIndex:
    global _INDEX
    if _INDEX is None:
        _INDEX = AppIndex.from_app(app)
    return _INDEX


async def test_end_to_end_on_azurite(azurite_connection_string: str) -> None:
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("e2e"))
    dispatcher = Dispatcher(_index(), store, options=DispatcherOptions(max_concurrent_activities=16))
    client = TaskHubClient(_index(), store)
    timings: dict[str, float] = {}

    async def run(name: str, n: int | None, timeout: float = 60.0) -> Instance:
        started = time.perf_counter()
        # Inputs are stored as the SDK client sends them: JSON text of the JSON text.
        iid = await client.start(name, None if n is None else json.dumps(json.dumps(n)))
        deadline = time.monotonic() + timeout
        while True:
            await dispatcher.run_until_idle()
            inst = await client.get(iid)
            assert inst is not None
            if inst.runtime_status.is_terminal or time.monotonic() > deadline:
                timings[name] = time.perf_counter() - started
                return inst
            await asyncio.sleep(0.1)  # a timer is pending: its message becomes visible by itself

    try:
        await store.acquire_hub_lease()
        chain = await run("e2e_chain", 20)
        fan = await run("e2e_fan", 50)
        timer = await run("e2e_timer", None)
        for amount in (3, 4):
            await client.signal_entity("E2eCounter", "k 1", "add", json.dumps(amount))
        await dispatcher.run_until_idle()
        entity = await client.read_entity("E2eCounter", "k 1")
        reopened = await open_store({"AzureWebJobsStorage": azurite_connection_string}, store.hub)
        entity_row = await reopened.load("@e2ecounter@k 1")
        await reopened.close()
    finally:
        dispatcher.close()
        await store.close()
    assert (chain.runtime_status, chain.output) == (RuntimeStatus.COMPLETED, "20")
    assert (fan.runtime_status, fan.output) == (RuntimeStatus.COMPLETED, str(sum(range(1, 51))))
    assert (timer.runtime_status, timer.output) == (RuntimeStatus.COMPLETED, "42")
    assert timings["e2e_timer"] >= 1.0
    assert entity == (True, "7")
    assert entity_row is not None and entity_row.entity_exists and entity_row.entity_state == "7"
    print(
        f"\nazurite e2e: chain(20) {timings['e2e_chain']:.2f}s, fan-out(50) {timings['e2e_fan']:.2f}s, "
        f"timer(1s) {timings['e2e_timer']:.2f}s"
    )


async def test_restart_resumes_from_storage(azurite_connection_string: str) -> None:
    """A second host (fresh store, empty cache) finishes what the first one left half-done."""
    settings = {"AzureWebJobsStorage": azurite_connection_string}
    name = new_hub_name("restart")
    first = await open_store(settings, name)
    dispatcher = Dispatcher(_index(), first)
    iid = await TaskHubClient(_index(), first).start("e2e_chain", json.dumps(json.dumps(12)))
    try:
        while True:  # a few steps of the chain, then stop cleanly (work in hand finishes)
            await dispatcher.pump()
            current = await first.load(iid)
            events = current.history if current else []
            if sum(ev["EventType"] == h.EventType.TASK_COMPLETED for ev in events) >= 3:
                break
            await asyncio.sleep(0.005)
        await dispatcher.drain()
    finally:
        dispatcher.close()
        await first.close()
    second = await open_store(settings, name)
    dispatcher = Dispatcher(_index(), second)
    try:
        halfway = await second.load(iid)
        assert halfway is not None and not halfway.runtime_status.is_terminal and halfway.history
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await dispatcher.run_until_idle()
            done = await second.load(iid)
            if done is not None and done.runtime_status.is_terminal:
                break
            await asyncio.sleep(0.1)
    finally:
        dispatcher.close()
        await second.close()
    assert done is not None and (done.runtime_status, done.output) == (RuntimeStatus.COMPLETED, "12")
    assert sum(1 for ev in done.history if ev["EventType"] == h.EventType.TASK_COMPLETED) == 12


@pytest.mark.parametrize("fault", ["answer-lost", "retried-after-commit"])
async def test_a_checkpoint_whose_answer_was_lost_heals(azurite_connection_string: str, fault: str) -> None:
    """A commit that succeeded but whose answer never came (a timeout: `ServiceResponseError`), or that
    the client retried after it had succeeded (the retry then fails with 412): either way the host
    holds the hub lease and its cached copy is now behind storage. The cached copy is dropped, the work
    item retried from what storage holds (its messages are then duplicates and dropped), and the chain
    finishes with no livelock: a bounded number of transactions, none lost, no duplicate event."""
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("lost"))
    dispatcher = Dispatcher(_index(), store)
    client = TaskHubClient(_index(), store)
    submit = store.history.transact
    calls = {"n": 0}

    async def faulty(operations: Any) -> Any:
        calls["n"] += 1
        result = await submit(operations)  # committed
        if calls["n"] in (3, 6, 7):
            if fault == "answer-lost":
                raise ServiceResponseError("the connection closed before the response arrived")
            return await submit(operations)  # what a retry of a committed request gets: 412
        return result

    store.history.transact = faulty  # type: ignore[method-assign]
    try:
        await store.acquire_hub_lease()
        iid = await client.start("e2e_chain", json.dumps(json.dumps(8)))
        deadline = time.monotonic() + 60
        while True:
            await dispatcher.run_until_idle()
            inst = await store.load(iid)
            assert inst is not None
            if inst.runtime_status.is_terminal:
                break
            assert time.monotonic() < deadline, f"not finished: {len(inst.history)} events"
            await asyncio.sleep(0.05)
    finally:
        dispatcher.close()
        await store.close()
    assert (inst.runtime_status, inst.output) == (RuntimeStatus.COMPLETED, "8")
    completed = [ev["TaskScheduledId"] for ev in inst.history if ev["EventType"] == h.EventType.TASK_COMPLETED]
    assert sorted(completed) == list(range(8))
    assert calls["n"] < 40, f"{calls['n']} transactions for 8 steps: a retry loop"


async def test_hub_resources_gone_from_storage_are_recreated_and_instances_written_back(
    azurite_connection_string: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage that comes back without the hub's tables, queues and containers (Azurite killed before it
    first saved them; it persists on an interval): every request fails with TableNotFound, QueueNotFound
    or ContainerNotFound. The store recreates the hub's resources as at start-up, the dispatcher resumes
    from storage, the instances this host holds in its cache are written back (and named in the log),
    the start message of one still Pending is sent again, and both finish with their exact outputs
    without a restart (issue 12 item 2)."""
    store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, new_hub_name("gone"))
    dispatcher = Dispatcher(_index(), store)
    client = TaskHubClient(_index(), store)
    stop = asyncio.Event()
    runner: asyncio.Task[None] | None = None
    try:
        await store.acquire_hub_lease()
        running = await client.start("e2e_chain", json.dumps(json.dumps(6)))
        while True:  # a few steps of the chain, then the storage loses everything
            await dispatcher.pump()
            current = await store.load(running)
            if (
                current is not None
                and sum(ev["EventType"] == h.EventType.TASK_COMPLETED for ev in current.history) >= 2
            ):
                break
            await asyncio.sleep(0.005)
        pending = await client.start("e2e_chain", json.dumps(json.dumps(3)))  # its start message only queued
        layout, endpoints = store.layout, store._endpoints
        for table in (layout.history_table, layout.instances_table):
            await endpoints.tables.delete_table(table)
        for queue in [*layout.control_queues, layout.work_queue, layout.poison_queue]:
            await endpoints.queues.delete_queue(queue)
        for container in (layout.large_messages_container, layout.leases_container):
            await endpoints.blobs.delete_container(container)
        with caplog.at_level(logging.INFO, logger="devhost"):
            runner = asyncio.ensure_future(dispatcher.run(stop))
            deadline = time.monotonic() + 30
            while True:
                done = [await store.load(iid) for iid in (running, pending)]
                if all(inst is not None and inst.runtime_status.is_terminal for inst in done):
                    break
                assert time.monotonic() < deadline, [None if i is None else i.runtime_status for i in done]
                await asyncio.sleep(0.05)
            stop.set()
            await runner
    finally:
        stop.set()
        if runner is not None:
            await asyncio.gather(runner, return_exceptions=True)
        dispatcher.close()
        await store.close()
    reopened = await open_store({"AzureWebJobsStorage": azurite_connection_string}, store.hub)
    try:
        stored = {iid: await reopened.load(iid) for iid in (running, pending)}
    finally:
        await reopened.close()
    assert [(i.runtime_status, i.output) if i else None for i in stored.values()] == [
        (RuntimeStatus.COMPLETED, "6"),
        (RuntimeStatus.COMPLETED, "3"),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert any("was missing from storage" in m and "recreated" in m for m in messages), messages
    written_back = [m for m in messages if "written back:" in m]
    assert written_back and {running, pending} <= set(written_back[0].split("written back: ")[1].split(", ")), messages
    assert any("sent again the start message" in m and pending in m for m in messages), messages


def test_only_a_missing_table_queue_or_container_counts_as_the_hub_gone() -> None:
    """A missing entity, message or blob is ordinary (no such instance, already acked); a missing table,
    queue or container means the hub itself is gone, also when a ConcurrencyError hides the cause."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableTransactionError

    from devhost.store.azure.resources import missing_resource

    def error(code: str) -> ResourceNotFoundError:
        exc = ResourceNotFoundError(message=code)
        exc.error_code = code  # type: ignore[attr-defined]
        return exc

    for code in ("TableNotFound", "QueueNotFound", "ContainerNotFound"):
        assert missing_resource(error(code)) == code
    for code in ("ResourceNotFound", "MessageNotFound", "BlobNotFound"):
        assert missing_resource(error(code)) is None
    batch = TableTransactionError(message="TableNotFound")
    batch.error_code = "TableNotFound"  # type: ignore[attr-defined]
    try:
        try:
            raise batch
        except TableTransactionError:
            raise ConcurrencyError("instance 'x' was changed by someone else") from None
    except ConcurrencyError as hidden:
        assert missing_resource(hidden) == "TableNotFound"
    assert missing_resource(ConcurrencyError("412")) is None
