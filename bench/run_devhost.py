"""devhost in `.venv`: `--system devhost-memory` (DurableHarness, memory hub; `devhost-incremental` is
the same with DEVHOST_REPLAY=incremental, set by peers.py) or `--system devhost-azurite` (Dispatcher +
AzureStorageStore on the Azurite whose connection string is in the BENCH_AZURITE environment variable;
a fresh task hub per run).

The app is a real DFApp run through the real SDK replay. Episodes are timed by wrapping the
dispatcher's `process_orchestration` (replay only, no I/O) and its `_process_group` (the whole
work item: load, replay, send, checkpoint, delete the messages).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_common import Workload, parse_args, run_workload

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_app import app  # noqa: E402
from devhost import dispatcher as dispatcher_module  # noqa: E402
from devhost.client import TaskHubClient  # noqa: E402
from devhost.dispatcher import Dispatcher  # noqa: E402
from devhost.harness import DurableHarness, to_json_text  # noqa: E402
from devhost.history import EventType, RuntimeStatus  # noqa: E402
from devhost.index import AppIndex  # noqa: E402

EPISODES: list[float] = []
WORK_ITEMS: list[float] = []
_replay = getattr(dispatcher_module, "process_orchestration", None)
_process_group = getattr(Dispatcher, "_process_group", None)


def _timed_replay(*args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return _replay(*args, **kwargs)  # type: ignore[misc]
    finally:
        EPISODES.append(time.perf_counter() - started)


async def _timed_group(self: Dispatcher, iid: str, group: list[Any]) -> None:
    started = time.perf_counter()
    try:
        await _process_group(self, iid, group)  # type: ignore[misc]
    finally:
        WORK_ITEMS.append(time.perf_counter() - started)


def instrument() -> None:
    """Time episodes and work items. Instrumentation only (the engine is unchanged); skipped
    if the dispatcher's internals move."""
    if callable(_replay):
        dispatcher_module.process_orchestration = _timed_replay  # type: ignore[assignment]
    if callable(_process_group):
        Dispatcher._process_group = _timed_group  # type: ignore[method-assign]


HTTP: dict[str, list[float]] = {}
HTTP_TIMED: dict[str, list[float]] = {}


def count_http(record: Callable[[str, float], None] | None = None) -> None:
    """Count and time every HTTP request the Azure SDKs make, by kind (instrumentation only):
    into `HTTP`, or handed to `record(kind, seconds)` (bench/azurite_bench.py)."""
    import aiohttp

    original = aiohttp.ClientSession._request

    def into_http(kind: str, seconds: float) -> None:
        HTTP.setdefault(kind, []).append(seconds)

    keep = record or into_http

    async def timed(self: Any, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, method, url, *args, **kwargs)
        finally:
            keep(_http_kind(method, str(url)), time.perf_counter() - started)

    aiohttp.ClientSession._request = timed  # type: ignore[method-assign]


def _http_kind(method: str, url: str) -> str:
    path = url.split("?", 1)[0]
    if "/messages" in path:
        if method == "POST":
            return "queue send"
        if method == "GET":
            return "queue receive"
        if method == "DELETE":
            return "queue delete"
        return f"queue {method.lower()} (update)"
    if path.endswith("$batch"):
        return "table batch (checkpoint)"
    if "Instances" in path:
        return f"table {method} Instances row"
    if "History" in path:
        return f"table {method} History" + (" sentinel" if "sentinel" in path else "")
    return f"other {method}"


def _input_text(n: int) -> str:
    return json.dumps(to_json_text(n))  # as DurableHarness.astart / the SDK client encode it


async def _memory_once(w: Workload) -> float:
    harness = DurableHarness(app, max_concurrent_activities=16)
    try:
        name = "chain" if w.kind == "chain" else "fan"
        started = time.perf_counter()
        ids = [await harness.astart(name, w.n) for _ in range(w.instances)]
        await harness.arun(None)
        wall = time.perf_counter() - started
        for iid in ids:
            status = await harness.astatus(iid)
            if status.runtime_status != RuntimeStatus.COMPLETED or status.output != w.expected():
                raise RuntimeError(f"devhost-memory {iid}: {status.runtime_status} {status.output!r}")
        return wall
    finally:
        harness.dispatcher.close()


async def _azurite_once(w: Workload, index: AppIndex, connection_string: str) -> float:
    from devhost.store.azure import new_hub_name, open_store

    store = await open_store({"AzureWebJobsStorage": connection_string}, new_hub_name("bench"))
    # As `devhost start` does: with the hub lease held, loads are served from the store's cache.
    acquire = getattr(store, "acquire_hub_lease", None)
    if acquire is not None:
        await acquire()
    finished: list[tuple[str, RuntimeStatus]] = []
    done = asyncio.Event()

    def on_finished(iid: str, _name: str, status: RuntimeStatus) -> None:
        finished.append((iid, status))
        if len(finished) >= w.instances:
            done.set()

    dispatcher = Dispatcher(index, store, on_finished=on_finished)
    client = TaskHubClient(index, store)
    stop = asyncio.Event()
    server = asyncio.ensure_future(dispatcher.run(stop))
    try:
        name = "chain" if w.kind == "chain" else "fan"
        HTTP.clear()  # count the timed part only (not the hub set-up)
        started = time.perf_counter()
        ids = [await client.start(name, _input_text(w.n)) for _ in range(w.instances)]
        await asyncio.wait_for(done.wait(), 900)
        wall = time.perf_counter() - started
        HTTP_TIMED.update({kind: list(v) for kind, v in HTTP.items()})
    finally:
        stop.set()
        await server
        dispatcher.close()
        await store.close()  # releases the hub lease: what follows must come from storage, not this cache
    await verify_from_storage(connection_string, store.hub, ids, w)
    return wall


async def verify_from_storage(connection_string: str, hub: str, ids: list[str], w: Workload) -> None:
    """Check the results as storage holds them: a fresh store on the same hub, without the lease
    (so `load` reads the sentinel and the history rows, never a cache), once the run's store is
    closed. Every instance must be Completed with the expected output and its history must hold
    one TaskCompleted per step."""
    from devhost.store.azure import open_store

    fresh = await open_store({"AzureWebJobsStorage": connection_string}, hub)
    try:
        for iid in ids:
            inst = await fresh.load(iid, history=True)
            if (
                inst is None
                or inst.runtime_status != RuntimeStatus.COMPLETED
                or json.loads(inst.output or "null") != w.expected()
            ):
                raise RuntimeError(
                    f"devhost-azurite {iid} in storage: {inst and inst.runtime_status} {inst and inst.output}"
                )
            done = sum(1 for e in inst.history if e.get("EventType") == EventType.TASK_COMPLETED)
            if done != w.n:
                raise RuntimeError(f"devhost-azurite {iid} in storage: {done} TaskCompleted events, {w.n} expected")
    finally:
        await fresh.close()


def main() -> None:
    args = parse_args(__doc__)
    instrument()
    index = AppIndex.from_app(app)
    connection_string = os.environ.get("BENCH_AZURITE", "")
    if args.system == "devhost-azurite" and not connection_string:
        raise SystemExit("devhost-azurite needs BENCH_AZURITE (an Azurite connection string)")

    if args.system == "devhost-azurite":
        count_http()

    def once(w: Workload) -> dict[str, Any]:
        EPISODES.clear()
        WORK_ITEMS.clear()
        HTTP_TIMED.clear()
        if args.system != "devhost-azurite":  # devhost-memory, devhost-incremental (DEVHOST_REPLAY set by peers.py)
            wall = asyncio.run(_memory_once(w))
        else:
            wall = asyncio.run(_azurite_once(w, index, connection_string))
        http = {kind: {"count": len(v), "total_ms": sum(v) * 1000} for kind, v in sorted(HTTP_TIMED.items())}
        return {"wall_s": wall, "episodes_s": list(EPISODES), "work_items_s": list(WORK_ITEMS), "http": http}

    versions = {"azure-functions-durable": version("azure-functions-durable")}
    notes = f"DurableHarness (virtual clock), 16 activity slots, {os.environ.get('DEVHOST_REPLAY') or 'full'} replay"
    if args.system == "devhost-azurite":
        versions |= {
            "azure-data-tables": version("azure-data-tables"),
            "azure-storage-queue": version("azure-storage-queue"),
        }
        notes = (
            "Dispatcher.run + AzureStorageStore on Azurite with the hub lease held (as devhost start), "
            "default DispatcherOptions, fresh hub per run"
        )
    run_workload(args, once, versions=versions, notes=notes)


if __name__ == "__main__":
    main()
