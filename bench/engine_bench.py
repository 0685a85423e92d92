"""Engine throughput on the memory hub: sequential chain and fan-out/fan-in, per replay mode.

Prints activities per second (median of several runs, with the spread). Figures, not
assertions: run it with `make bench`. The app is a real DFApp driven through the real
SDK replay; virtual time, so only engine + SDK cost is measured.

`--replay full,incremental` runs each mode (EngineOptions.replay: "full" replays the whole
history every episode, as Azure does; "incremental" feeds a kept SDK executor only the new
events, devhost.sdk_replay.Session). `--growth 500,1000,2000` adds the replay growth table:
per chain length and mode, the wall time, its ratio to the previous length (4.0 for a
doubling is O(n²), 2.0 is linear), and the median episode cost (`process_orchestration`,
timed by wrapping it: instrumentation only) of the first 10 and the last 10 episodes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import devhost.dispatcher as _dispatcher  # noqa: E402
from bench_app import app  # noqa: E402
from devhost.harness import DurableHarness  # noqa: E402

_EPISODES: list[float] = []
_process = _dispatcher.process_orchestration


def _timed_process(*args: Any) -> Any:
    started = time.perf_counter()
    try:
        return _process(*args)
    finally:
        _EPISODES.append(time.perf_counter() - started)


_dispatcher.process_orchestration = _timed_process  # type: ignore[assignment]


async def _one(name: str, n: int, replay: str) -> tuple[float, int, list[float]]:
    harness = DurableHarness(app, max_concurrent_activities=16, replay=replay)
    _EPISODES.clear()
    try:
        started = time.perf_counter()
        iid = await harness.astart(name, n)
        status = await harness.arun(iid)
        elapsed = time.perf_counter() - started
        assert status is not None and status.runtime_status.value == "Completed", status
        return elapsed, harness.dispatcher.stats["episodes"], list(_EPISODES)
    finally:
        harness.dispatcher.close()


def measure(name: str, n: int, repeat: int, replay: str) -> dict[str, float]:
    runs = [asyncio.run(_one(name, n, replay)) for _ in range(repeat)]
    rates = sorted(n / t for t, _, _ in runs)
    episodes = [e for _, _, e in runs]
    return {
        "activities": n,
        "median_per_s": statistics.median(rates),
        "min_per_s": rates[0],
        "max_per_s": rates[-1],
        "median_wall_s": statistics.median(t for t, _, _ in runs),
        "min_wall_s": min(t for t, _, _ in runs),
        "max_wall_s": max(t for t, _, _ in runs),
        "episodes": runs[0][1],
        "first10_ms": statistics.median(statistics.median(e[:10]) for e in episodes) * 1000,
        "last10_ms": statistics.median(statistics.median(e[-10:]) for e in episodes) * 1000,
    }


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--replay", default="full", help="comma-separated replay modes: full, incremental")
    parser.add_argument("--growth", default="", help="comma-separated chain lengths for the growth table")
    parser.add_argument("--growth-repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    modes = [m.strip() for m in args.replay.split(",") if m.strip()]
    results: dict[str, Any] = {}
    print(f"before: {_load()}")
    print(f"{'workload':<26}{'replay':>12}{'activities/s (median)':>24}{'spread':>16}{'episodes':>10}")
    for mode in modes:
        for label, (name, n) in {
            "sequential chain (100)": ("chain", 100),
            "fan-out/fan-in (1000)": ("fan", 1000),
        }.items():
            r = measure(name, n, args.repeat, mode)
            results[f"{label} [{mode}]"] = r
            spread = f"{r['min_per_s']:.0f}-{r['max_per_s']:.0f}"
            print(f"{label:<26}{mode:>12}{r['median_per_s']:>24.0f}{spread:>16}{r['episodes']:>10.0f}", flush=True)
    lengths = [int(x) for x in args.growth.split(",") if x.strip()]
    if lengths:
        print(
            f"\nreplay growth (chain; {args.growth_repeat} run(s) each; wall min-max; episode: process_orchestration)"
        )
        print(
            f"{'steps':>6}{'replay':>13}{'wall s':>18}{'x prev':>8}{'steps/s':>9}"
            f"{'episode first10 ms':>20}{'last10 ms':>11}{'last/first':>11}"
        )
        for mode in modes:
            prev = None
            for n in lengths:
                r = measure("chain", n, args.growth_repeat, mode)
                results[f"chain ({n}) [{mode}]"] = r
                wall = r["median_wall_s"]
                ratio = f"{wall / prev:.2f}" if prev else "-"
                prev = wall
                span = f"{wall:.2f} ({r['min_wall_s']:.2f}-{r['max_wall_s']:.2f})"
                print(
                    f"{n:>6}{mode:>13}{span:>18}{ratio:>8}{r['median_per_s']:>9.0f}"
                    f"{r['first10_ms']:>20.2f}{r['last10_ms']:>11.2f}{r['last10_ms'] / r['first10_ms']:>11.1f}",
                    flush=True,
                )
    print(f"after: {_load()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
