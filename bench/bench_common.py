"""What every system runner shares: the workloads, timing of repetitions and the JSON report.

Standard library only: the devhost runner imports this in `.venv`, the peer runners in
`.venv-bench`. A runner is started by `bench/peers.py` as

    python bench/run_<system>.py --system NAME --workload KEY --repeat N --out FILE [--profile FILE]

and writes one JSON document to FILE (see `report`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import platform
import pstats
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    kind: str  # "chain": n sequential steps; "fan": n steps in parallel, then the sum
    n: int  # steps per orchestration
    instances: int  # orchestrations started together

    @property
    def steps(self) -> int:
        return self.n * self.instances

    def expected(self) -> int:
        """Every orchestration's result: a chain adds 1 per step; a fan sums i+1 over i < n."""
        return self.n if self.kind == "chain" else self.n * (self.n + 1) // 2


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("chain100", "sequential chain, 100 steps", "chain", 100, 1),
        Workload("fan1000", "fan-out/fan-in, 1000 steps", "fan", 1000, 1),
        Workload("concurrent50x10", "50 orchestrations x 10 steps", "chain", 10, 50),
        Workload("chain1000", "sequential chain, 1000 steps", "chain", 1000, 1),
    )
}


class StepClock:
    """The activity (step) body of every system calls `mark()`: when each step ran."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def mark(self) -> None:
        with self._lock:
            self.times.append(time.perf_counter())

    def reset(self) -> None:
        with self._lock:
            self.times = []


STEPS = StepClock()


def step_body(value: int) -> int:
    """The work of one step, identical on every system."""
    STEPS.mark()
    return value + 1


def rss_mib() -> float:
    """Current resident set size of this process (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def growth(costs: list[float], k: int = 10) -> dict[str, Any]:
    """Median of the first k against the last k of a series of per-step (or per-episode) costs."""
    if len(costs) < 2 * k:
        return {"count": len(costs)}
    first, last = _median(costs[:k]), _median(costs[-k:])
    assert first is not None and last is not None
    return {
        "count": len(costs),
        "first_ms": first * 1000,
        "last_ms": last * 1000,
        "last_over_first": last / first if first else None,
    }


def step_intervals(times: list[float]) -> list[float]:
    """Time between consecutive step executions: in a chain, the whole cost of one step."""
    ts = sorted(times)
    return [b - a for a, b in zip(ts, ts[1:])]


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--system", required=True)
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed small runs first")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="cProfile the timed runs; top functions written here")
    return parser.parse_args()


def run_workload(
    args: argparse.Namespace,
    once: Callable[[Workload], dict[str, Any]],
    *,
    versions: dict[str, str],
    notes: str = "",
) -> None:
    """Run `once(workload)` warm-up + repeat times and write the report.

    `once` returns at least {"wall_s": float}; it may add "episodes_s" (per-episode costs).
    Step timestamps come from `STEPS`, reset before every run."""
    workload = WORKLOADS[args.workload]
    # Warm-up on a small version of the workload: imports, caches, thread pools, connections.
    small = Workload(workload.key, workload.label, workload.kind, min(workload.n, 50), min(workload.instances, 5))
    for _ in range(args.warmup):
        STEPS.reset()
        once(small)
    gc.collect()
    baseline = rss_mib()
    profiler = cProfile.Profile() if args.profile else None
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        STEPS.reset()
        if profiler:
            profiler.enable()
        result = once(workload)
        if profiler:
            profiler.disable()
        if len(STEPS.times) < workload.steps:
            raise RuntimeError(f"{args.system}/{workload.key}: {len(STEPS.times)} steps ran, {workload.steps} expected")
        run: dict[str, Any] = {
            "wall_s": result["wall_s"],
            "steps": len(STEPS.times),
            "steps_per_s": workload.steps / result["wall_s"],
        }
        if workload.kind == "chain" and workload.instances == 1:
            run["step_growth"] = growth(step_intervals(STEPS.times))
        if result.get("episodes_s"):
            run["episode_growth"] = growth(result["episodes_s"])
            run["episodes"] = len(result["episodes_s"])
        if result.get("work_items_s"):
            run["work_items_growth"] = growth(result["work_items_s"])
        if result.get("http"):  # storage requests by kind: {"count", "total_ms"}
            run["http"] = result["http"]
        runs.append(run)
    if profiler and args.profile:
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(buf.getvalue())
    report = {
        "system": args.system,
        "workload": workload.key,
        "label": workload.label,
        "steps": workload.steps,
        "runs": runs,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
        "python": platform.python_version(),
        "versions": versions,
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    sys.stdout.flush()
