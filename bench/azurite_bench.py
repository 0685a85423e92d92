"""devhost on Azurite: sequential chain and fan-out/fan-in through the Azure Storage hub.

Starts its own Azurite (from node_modules) on free ports with data in a temp folder.
Prints activities per second (median and spread); figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import app  # noqa: E402
from devhost.azurite import start_azurite  # noqa: E402
from devhost.client import TaskHubClient  # noqa: E402
from devhost.dispatcher import Dispatcher, DispatcherOptions  # noqa: E402
from devhost.index import AppIndex  # noqa: E402
from devhost.store.azure import new_hub_name, open_store  # noqa: E402


async def run_once(conn: str, name: str, n: int) -> float:
    store = await open_store({"AzureWebJobsStorage": conn}, new_hub_name("bench"))
    await store.acquire_hub_lease()
    index = AppIndex.from_app(app)
    dispatcher = Dispatcher(index, store, options=DispatcherOptions(max_concurrent_activities=16))
    client = TaskHubClient(index, store)
    stop = asyncio.Event()
    runner = asyncio.ensure_future(dispatcher.run(stop))
    try:
        started = time.perf_counter()
        iid = await client.start(name, json.dumps(json.dumps(n)))
        while True:
            inst = await store.load(iid, history=False)
            if inst is not None and inst.runtime_status.is_terminal:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        assert inst.runtime_status.value == "Completed", inst.output
        return elapsed
    finally:
        stop.set()
        await runner
        dispatcher.close()
        await store.release_hub_lease()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    azurite = start_azurite()
    try:
        for label, name, n in (("sequential chain (100)", "chain", 100), ("fan-out/fan-in (1000)", "fan", 1000)):
            rates = sorted(n / asyncio.run(run_once(azurite.connection_string, name, n)) for _ in range(args.repeat))
            print(f"{label:<26}{statistics.median(rates):>10.0f}/s   spread {rates[0]:.0f}-{rates[-1]:.0f}")
    finally:
        azurite.stop()


if __name__ == "__main__":
    main()
