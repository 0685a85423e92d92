"""Engine throughput on the memory hub: sequential chain and fan-out/fan-in.

Prints activities per second (median of several runs, with the spread). Figures, not
assertions: run it with `make bench`. The app is a real DFApp driven through the real
SDK replay; virtual time, so only engine + SDK cost is measured.
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
from devhost.harness import DurableHarness  # noqa: E402


async def _one(name: str, n: int) -> tuple[float, int]:
    harness = DurableHarness(app, max_concurrent_activities=16)
    try:
        started = time.perf_counter()
        iid = await harness.astart(name, n)
        status = await harness.arun(iid)
        elapsed = time.perf_counter() - started
        assert status is not None and status.runtime_status.value == "Completed", status
        return elapsed, harness.dispatcher.stats["episodes"]
    finally:
        harness.dispatcher.close()


def measure(name: str, n: int, repeat: int) -> dict[str, float]:
    runs = [asyncio.run(_one(name, n)) for _ in range(repeat)]
    rates = sorted(n / t for t, _ in runs)
    return {
        "activities": n,
        "median_per_s": statistics.median(rates),
        "min_per_s": rates[0],
        "max_per_s": rates[-1],
        "median_wall_s": statistics.median(t for t, _ in runs),
        "episodes": runs[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = {
        "sequential chain (100)": measure("chain", 100, args.repeat),
        "fan-out/fan-in (1000)": measure("fan", 1000, args.repeat),
    }
    print(f"{'workload':<26}{'activities/s (median)':>24}{'spread':>22}{'episodes':>10}")
    for label, r in results.items():
        spread = f"{r['min_per_s']:.0f}-{r['max_per_s']:.0f}"
        print(f"{label:<26}{r['median_per_s']:>24.0f}{spread:>22}{r['episodes']:>10.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
