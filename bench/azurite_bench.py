"""devhost on Azurite: where a step's time goes (phases, requests, CPU of both processes).

Starts its own Azurite (from node_modules) on free ports with data in a temp folder, runs a
workload with the hub lease held (as `devhost start`), and prints per repetition:

- wall time and steps/s (`bench/peers.py` gives the comparison with the peers);
- phases: store, dispatcher and HTTP methods wrapped with `perf_counter` (instrumentation only:
  nothing in devhost changes), their count, total and mean; phases nest and overlap (50
  concurrent chains), so they do not add up to the wall time;
- CPU time per step of this Python process and of Azurite's (Node.js, one thread) process, read
  from /proc: a step cannot take less wall time than Azurite's CPU for it when steps are
  sequential (a chain), nor a run less than Azurite's CPU for the run.

    .venv/bin/python bench/azurite_bench.py --workload chain100 --repeat 3
    .venv/bin/python bench/azurite_bench.py --workload concurrent50x10

Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import app  # noqa: E402
from devhost import dispatcher as dispatcher_module  # noqa: E402
from devhost.azurite import start_azurite  # noqa: E402
from devhost.client import TaskHubClient  # noqa: E402
from devhost.dispatcher import Dispatcher  # noqa: E402
from devhost.harness import to_json_text  # noqa: E402
from devhost.history import RuntimeStatus  # noqa: E402
from devhost.index import AppIndex  # noqa: E402
from devhost.store.azure import new_hub_name, open_store  # noqa: E402
from devhost.store.azure import store as store_module  # noqa: E402
from run_devhost import count_http  # noqa: E402

WORKLOADS = {  # key: (orchestrator, steps per instance, instances)
    "chain100": ("chain", 100, 1),
    "concurrent50x10": ("chain", 10, 50),
    "fan1000": ("fan", 1000, 1),
}
TOTAL: collections.defaultdict[str, float] = collections.defaultdict(float)
COUNT: collections.Counter[str] = collections.Counter()


def _record(key: str, seconds: float) -> None:
    TOTAL[key] += seconds
    COUNT[key] += 1


def _wrap_async(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            _record(key, time.perf_counter() - started)

    setattr(owner, name, timed)


def _wrap_sync(owner: Any, name: str, key: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _record(key, time.perf_counter() - started)

    setattr(owner, name, timed)


def instrument() -> None:
    """Wrap the phases (instrumentation only)."""

    store_cls = store_module.AzureStorageStore
    for name in ("load", "create", "checkpoint", "enqueue", "dequeue", "ack"):
        _wrap_async(store_cls, name, f"store.{name}")
    _wrap_async(Dispatcher, "_process_group", "dispatcher: work item (load, replay, send, checkpoint, ack)")
    _wrap_async(Dispatcher, "_run_activity", "dispatcher: activity (thread hand-off and back)")
    _wrap_async(TaskHubClient, "start", "client.start")
    _wrap_sync(dispatcher_module, "process_orchestration", "replay (process_orchestration, on its thread)")
    count_http(lambda kind, seconds: _record(f"http {kind}", seconds))


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_once(conn: str, index: AppIndex, name: str, n: int, instances: int) -> float:
    store = await open_store({"AzureWebJobsStorage": conn}, new_hub_name("bench"))
    await store.acquire_hub_lease()
    finished: list[str] = []
    done = asyncio.Event()

    def on_finished(iid: str, _name: str, status: RuntimeStatus) -> None:
        finished.append(iid)
        if len(finished) >= instances:
            done.set()

    dispatcher = Dispatcher(index, store, on_finished=on_finished)
    client = TaskHubClient(index, store)
    stop = asyncio.Event()
    runner = asyncio.ensure_future(dispatcher.run(stop))
    try:
        TOTAL.clear()
        COUNT.clear()
        started = time.perf_counter()
        for _ in range(instances):
            await client.start(name, json.dumps(to_json_text(n)))
        await asyncio.wait_for(done.wait(), 600)
        return time.perf_counter() - started
    finally:
        stop.set()
        await runner
        dispatcher.close()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="chain100")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name, n, instances = WORKLOADS[args.workload]
    steps = n * instances
    instrument()
    index = AppIndex.from_app(app)
    azurite = start_azurite()
    try:
        asyncio.run(run_once(azurite.connection_string, index, name, min(n, 10), min(instances, 5)))  # warm-up
        for _ in range(args.repeat):
            own, node = _own_cpu(), _cpu_of(azurite.process.pid)
            wall = asyncio.run(run_once(azurite.connection_string, index, name, n, instances))
            own, node = _own_cpu() - own, _cpu_of(azurite.process.pid) - node
            print(
                f"{args.workload}: wall {wall * 1000:.0f} ms, {steps / wall:.0f} steps/s, {wall / steps * 1000:.2f} ms "
                f"per step; CPU per step: this process {own / steps * 1000:.2f} ms, Azurite "
                f"{node / steps * 1000:.2f} ms; 1-min load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            print(f"  {'phase':58s} {'count':>6s} {'total ms':>9s} {'per step':>9s} {'mean ms':>8s}")
            for key in sorted(TOTAL, key=lambda k: -TOTAL[k]):
                total = TOTAL[key] * 1000
                print(f"  {key:58s} {COUNT[key]:6d} {total:9.1f} {total / steps:9.2f} {total / COUNT[key]:8.2f}")
    finally:
        azurite.stop()


if __name__ == "__main__":
    main()
