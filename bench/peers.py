"""devhost side by side with peers: durabletask-python's in-memory backend and DBOS on SQLite.

    .venv/bin/python bench/peers.py              # what `make bench` runs (after the engine bench)
    .venv/bin/python bench/peers.py --profile    # + cProfile of the devhost runs in bench/results/profiles/

Each (system, workload) runs in its own subprocess: devhost in `.venv` (bench/run_devhost.py),
the peers in `.venv-bench` (bench/run_durabletask.py, bench/run_dbos.py; pinned in
bench/requirements-peers.txt). Every repetition is a fresh runner process (a small untimed
warm-up, then one timed run, JSON back), round-robin over the systems so that other load on
the machine hits all of them alike. The driver starts Azurite for devhost-azurite, prints
the table and writes bench/results/latest.json. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO))

from bench_common import WORKLOADS  # noqa: E402

SYSTEMS = {
    # name: (runner script, which venv)
    "devhost-memory": ("run_devhost.py", "app"),
    # The same with incremental replay (opt-in: DEVHOST_REPLAY=incremental; the test harness's fast mode).
    "devhost-incremental": ("run_devhost.py", "app"),
    "devhost-azurite": ("run_devhost.py", "app"),
    "durabletask": ("run_durabletask.py", "peers"),
    "dbos": ("run_dbos.py", "peers"),  # DBOS's default SQLite (rollback journal, fsync per commit)
    "dbos-wal": ("run_dbos.py", "peers"),  # SQLite in WAL mode, synchronous=NORMAL
    "dbos-children": ("run_dbos.py", "peers"),  # fan-out as child workflows (fan workloads only)
}
# Systems that only have a meaning for some workload kinds.
ONLY_KINDS = {"dbos-children": {"fan"}}
# A peer is a family of configurations; ratios are taken against its strongest one per workload.
PEERS = {"durabletask": ("durabletask",), "dbos": ("dbos", "dbos-wal", "dbos-children")}
DEVHOSTS = ("devhost-memory", "devhost-incremental", "devhost-azurite")
# (devhost system, peer): the issues' targets on steps/s ratios (issue 13). None: shown, no goal.
GOALS: dict[tuple[str, str], dict[str, float | None]] = {
    ("devhost-memory", "durabletask"): {"chain100": 2.0, "fan1000": 1.5, "concurrent50x10": 1.5, "chain1000": 1.5},
    ("devhost-incremental", "durabletask"): {"chain1000": 5.0},
    ("devhost-azurite", "dbos"): {"chain100": 0.5, "fan1000": 1.5, "concurrent50x10": 1.0, "chain1000": None},
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    azurite = ""
    try:
        azurite = json.loads((REPO / "node_modules" / "azurite" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        pass
    return {
        "host": platform.node(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "driver_python": platform.python_version(),
        "platform": platform.platform(),
        "azurite": azurite,
        **git_state(),
    }


def git_state() -> dict[str, Any]:
    """Which devhost was measured: the commit, and engine files changed on top of it."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=str(REPO), capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [
        line[3:] for line in git("status", "--porcelain", "--", "tools/devhost", "bench").splitlines() if line.strip()
    ]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "devhost_uncommitted": changed}


def _fmt_spread(values: list[float], digits: int = 0) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    runs = report["runs"]
    walls = [r["wall_s"] for r in runs]
    rates = [r["steps_per_s"] for r in runs]
    out: dict[str, Any] = {
        "system": report["system"],
        "workload": report["workload"],
        "label": report["label"],
        "steps": report["steps"],
        "repeat": len(runs),
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "steps_per_s_median": statistics.median(rates),
        "steps_per_s_min": min(rates),
        "steps_per_s_max": max(rates),
        "steps_per_s_runs": rates,
        "peak_rss_mib": report["peak_rss_mib"],
        "baseline_rss_mib": report["baseline_rss_mib"],
        "python": report["python"],
        "versions": report["versions"],
        "notes": report["notes"],
        "loadavg_1m_max": max((r.get("loadavg_1m_before", 0.0) for r in runs), default=0.0),
    }
    for key in ("step_growth", "episode_growth", "work_items_growth"):
        found = [r[key] for r in runs if key in r and "first_ms" in r[key]]
        if found:
            out[key] = {
                "first_ms": statistics.median(g["first_ms"] for g in found),
                "last_ms": statistics.median(g["last_ms"] for g in found),
                "last_over_first": statistics.median(g["last_over_first"] for g in found if g["last_over_first"]),
                "count": found[0]["count"],
            }
    http = [r["http"] for r in runs if r.get("http")]
    if http:  # storage requests per step and their mean latency, from the last run
        last = http[-1]
        out["http_per_step"] = {
            kind: {
                "per_step": v["count"] / report["steps"],
                "mean_ms": v["total_ms"] / v["count"] if v["count"] else 0.0,
            }
            for kind, v in last.items()
        }
    episodes = [r["episodes"] for r in runs if "episodes" in r]
    if episodes:
        out["episodes"] = statistics.median(episodes)
    return out


def run_rep(system: str, workload: str, rep: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One subprocess: a small warm-up, then one timed repetition; its JSON report (or an error)."""
    script, venv = SYSTEMS[system]
    python = args.app_python if venv == "app" else args.peer_python
    out = RESULTS / "raw" / f"{system}-{workload}-{rep}.json"
    log = RESULTS / "logs" / f"{system}-{workload}-{rep}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cmd = [python, str(BENCH / script), "--system", system, "--workload", workload, "--repeat", "1", "--out", str(out)]
    if rep == 0 and (args.profile and system.startswith("devhost") or args.profile_all):
        cmd += ["--profile", str(RESULTS / "profiles" / f"{system}-{workload}.txt")]
    if system == "devhost-incremental":
        env = {**env, "DEVHOST_REPLAY": "incremental"}
    load = os.getloadavg()[0]
    with log.open("w") as fh:
        try:
            proc = subprocess.run(
                cmd, cwd=str(BENCH), env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=args.timeout
            )
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-1500:]
        return {"system": system, "workload": workload, "error": f"exit {code}", "log_tail": tail}
    report: dict[str, Any] = json.loads(out.read_text())
    for run in report["runs"]:
        run["loadavg_1m_before"] = load
    return report


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetitions of one (system, workload), each from its own process, as one report."""
    failed = [r for r in reports if "error" in r]
    if failed:
        return failed[0]
    out = dict(reports[0])
    out["runs"] = [run for r in reports for run in r["runs"]]
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in reports)
    out["baseline_rss_mib"] = statistics.median(r["baseline_rss_mib"] for r in reports)
    return out


def strongest(by: dict[tuple[str, str], dict[str, Any]], peer: str, workload: str) -> dict[str, Any] | None:
    """The peer's best configuration on this workload (highest median steps/s)."""
    found = [by[(name, workload)] for name in PEERS[peer] if (name, workload) in by]
    return max(found, key=lambda r: r["steps_per_s_median"], default=None)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """devhost / peer of median steps/s, against the peer's strongest configuration, with the
    min–max of the per-round ratios (round i of one system against round i of the other: the
    round-robin puts them in the same time window, so machine load hits both alike)."""
    by = {(r["system"], r["workload"]): r for r in results if "error" not in r}
    rows = []
    for w in WORKLOADS:
        for dev in DEVHOSTS:
            for peer in PEERS:
                a, b = by.get((dev, w)), strongest(by, peer, w)
                if not a or not b:
                    continue
                ratio = a["steps_per_s_median"] / b["steps_per_s_median"]
                paired = [x / y for x, y in zip(a["steps_per_s_runs"], b["steps_per_s_runs"], strict=False) if y]
                goal = GOALS.get((dev, peer), {}).get(w)
                rows.append(
                    {
                        "workload": w,
                        "devhost": dev,
                        "peer": peer,
                        "against": b["system"],
                        "ratio": ratio,
                        "ratio_min": min(paired, default=ratio),
                        "ratio_max": max(paired, default=ratio),
                        "rounds": len(paired),
                        "goal": goal,
                        "met": None if goal is None else ratio >= goal,
                    }
                )
    return rows


def render(results: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | system | wall s (median, min–max) | steps/s (median, min–max) | peak RSS MiB | runs |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['workload']} | {r['system']} | failed: {r['error']} | | | |")
            continue
        wall = f"{r['wall_s_median']:.3f} ({r['wall_s_min']:.3f}–{r['wall_s_max']:.3f})"
        rate = f"{r['steps_per_s_median']:.0f} ({r['steps_per_s_min']:.0f}–{r['steps_per_s_max']:.0f})"
        lines.append(f"| {r['workload']} | {r['system']} | {wall} | {rate} | {r['peak_rss_mib']:.0f} | {r['repeat']} |")
    if ratio_rows:
        lines += [
            "",
            "Ratio devhost/peer of median steps/s against the peer's strongest configuration, with the"
            " min–max of the per-round ratios (goal in brackets: ✓ met, ✗ missed):",
            "",
            "| workload | devhost | vs durabletask | vs DBOS (strongest) |",
            "|---|---|---|---|",
        ]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for row in ratio_rows:
        mark = "" if row["goal"] is None else f" [≥{row['goal']:.2f} {'✓' if row['met'] else '✗'}]"
        against = f", vs {row['against']}" if row["against"] != row["peer"] else ""
        cells.setdefault((row["workload"], row["devhost"]), {})[row["peer"]] = (
            f"{row['ratio']:.2f}× ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}, {row['rounds']} rounds{against})"
            f"{mark}"
        )
    for (w, dev), c in cells.items():
        lines.append(f"| {w} | {dev} | {c.get('durabletask', '')} | {c.get('dbos', '')} |")
    growth = [r for r in results if "error" not in r and r["workload"] == "chain1000"]
    if growth:
        lines += [
            "",
            "Replay cost vs history (1000-step chain; median of the first 10 vs the last 10):",
            "",
            "| system | step interval first→last ms | × | episode (replay only) first→last ms | × |"
            " work item (load+replay+store) first→last ms | × |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in growth:
            cols = []
            for key in ("step_growth", "episode_growth", "work_items_growth"):
                g = r.get(key)
                cols += (
                    [f"{g['first_ms']:.2f} → {g['last_ms']:.2f}", f"{g['last_over_first']:.1f}"] if g else ["n/a", ""]
                )
            lines.append(f"| {r['system']} | " + " | ".join(cols) + " |")
    storage = [r for r in results if "error" not in r and r.get("http_per_step")]
    if storage:
        lines += [
            "",
            "Azurite requests per step (last run; mean latency as the client saw it):",
            "",
            "| workload | request kind | per step | mean ms |",
            "|---|---|---|---|",
        ]
        for r in storage:
            for kind, v in sorted(r["http_per_step"].items(), key=lambda kv: -kv[1]["per_step"]):
                if v["per_step"] >= 0.05:
                    lines.append(f"| {r['workload']} | {kind} | {v['per_step']:.2f} | {v['mean_ms']:.1f} |")
    return "\n".join(lines)


def ensure_peer_venv(path: str) -> None:
    if not Path(path).exists():
        raise SystemExit(f"{path} is missing: `make bench` creates .venv-bench from bench/requirements-peers.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--long-repeat", type=int, default=5, help="repetitions of the 1000-step chain")
    parser.add_argument("--app-python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--peer-python", default=str(REPO / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--profile", action="store_true", help="cProfile the devhost runs")
    parser.add_argument("--profile-all", action="store_true", help="cProfile every run (slower; skews rates)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per (system, workload)")
    args = parser.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    for name in systems:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
    for w in workloads:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    if any(SYSTEMS[s][1] == "peers" for s in systems):
        ensure_peer_venv(args.peer_python)

    # No OpenTelemetry export in the measured processes (devhost would trace with an OTLP endpoint set).
    env = {k: v for k, v in os.environ.items() if k != "BENCH_AZURITE" and not k.startswith("OTEL_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    azurite = None
    if "devhost-azurite" in systems:
        from devhost.azurite import start_azurite

        azurite = start_azurite()
        env["BENCH_AZURITE"] = azurite.connection_string
    results: list[dict[str, Any]] = []
    azurite_hwm = None
    try:
        for w in workloads:
            # Repetitions round-robin over the systems, so load from elsewhere on the machine
            # (or a slow drift) hits every system alike rather than one system's whole series.
            repeat = args.long_repeat if w == "chain1000" else args.repeat
            kind = WORKLOADS[w].kind
            names = [name for name in systems if kind in ONLY_KINDS.get(name, {kind})]
            reports: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for rep in range(repeat):
                print(f"  {w:<16} rep {rep + 1}/{repeat}:", end="", flush=True)
                for name in names:
                    if reports[name] and "error" in reports[name][-1]:
                        continue
                    r = run_rep(name, w, rep, args, env)
                    reports[name].append(r)
                    print(
                        f"  {name} {'FAILED' if 'error' in r else format(r['runs'][0]['steps_per_s'], '.0f')}",
                        end="",
                        flush=True,
                    )
                print(flush=True)
            for name in names:
                merged = merge(reports[name])
                results.append(merged if "error" in merged else summarize(merged))
        if azurite is not None:
            azurite_hwm = _vm_hwm_mib(azurite.process.pid)
    finally:
        if azurite is not None:
            azurite.stop()

    ratio_rows = ratios(results)
    table = render(results, ratio_rows)
    info = machine()
    header = (
        f"{info['host']}: {info['nproc']} cores, {info['cpu']}, Python {info['driver_python']}; "
        f"Azurite {info['azurite']}"
        + (f" (its peak RSS {azurite_hwm:.0f} MiB, not counted above)" if azurite_hwm else "")
        + f"; devhost at {info['commit']}"
        + (f" + uncommitted {', '.join(info['devhost_uncommitted'])}" if info["devhost_uncommitted"] else "")
    )
    busy = max((r.get("loadavg_1m_max", 0.0) for r in results), default=0.0)
    if busy > (info["nproc"] or 1):
        header += (
            f"\nNOTE: the 1-minute load average reached {busy:.1f} on {info['nproc']} cores during the runs: "
            "other work shared the machine, figures are noisier than usual."
        )
    print()
    print(header)
    print()
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": info,
                "azurite_peak_rss_mib": azurite_hwm,
                "config": {"repeat": args.repeat, "long_repeat": args.long_repeat},
                "header": header,
                "results": results,
                "ratios": ratio_rows,
                "table_markdown": table,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json.relative_to(REPO) if args.json.is_relative_to(REPO) else args.json}")
    if any("error" in r for r in results):
        for r in results:
            if "error" in r:
                print(f"\n{r['system']} / {r['workload']} failed ({r['error']}):\n{r['log_tail']}", file=sys.stderr)
        sys.exit(1)


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
