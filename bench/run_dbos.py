"""DBOS Transact on SQLite (a fresh database file in a temp directory), in `.venv-bench`.

Three configurations (`--system`):

- `dbos`: DBOS's default SQLite set-up (rollback journal, `synchronous=FULL`: an fsync per commit).
- `dbos-wal`: the same database in WAL mode with `synchronous=NORMAL`, SQLite's recommended WAL
  setting: commits are durable against a process crash, fsyncs happen at WAL checkpoints. Closer
  to Azurite's own durability (tables in memory, saved to disk every few seconds).
- `dbos-children`: fan-out as child workflows (`DBOS.start_workflow` per item, then
  `get_result` each), default SQLite. Kept as a second row: it is how fan-out was measured before.

Chains are a sync `@DBOS.workflow` calling a sync `@DBOS.step` n times. Fan-out/fan-in in
`dbos` and `dbos-wal` is DBOS's documented form of parallel steps: an async workflow awaiting
`asyncio.gather` over n async steps (each step is checkpointed; a recovered workflow re-reads the
recorded results in call order). The 50 concurrent orchestrations are 50 `DBOS.start_workflow`
calls from the client side.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_common import Workload, parse_args, run_workload, step_body

SYSTEMS = ("dbos", "dbos-wal", "dbos-children")


def _use_wal(db: Path) -> None:
    """WAL mode is a property of the database file; `synchronous` is per connection (below)."""
    with sqlite3.connect(db) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise RuntimeError(f"SQLite refused WAL mode ({mode})")


def main() -> None:
    args = parse_args(__doc__)
    if args.system not in SYSTEMS:
        raise SystemExit(f"run_dbos.py runs {', '.join(SYSTEMS)}, not {args.system!r}")
    # Peer packages are imported here only: this file is linted and imported in `.venv` too.
    import sqlalchemy
    from dbos import DBOS

    tmp = tempfile.TemporaryDirectory(prefix="bench-dbos-")
    db = Path(tmp.name) / "dbos.sqlite"
    wal = args.system == "dbos-wal"
    if wal:
        _use_wal(db)

        @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
        def _normal_sync(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{db}", "log_level": "WARNING"})
    logging.getLogger("dbos").setLevel(logging.WARNING)

    @DBOS.step()
    def step(value: int) -> int:
        return step_body(value)

    @DBOS.step()
    async def astep(value: int) -> int:
        return step_body(value)

    @DBOS.workflow()
    def chain(n: int) -> int:
        value = 0
        for _ in range(n):
            value = step(value)
        return value

    @DBOS.workflow()
    async def fan(n: int) -> int:
        results = await asyncio.gather(*(astep(i) for i in range(n)))
        return sum(results)

    @DBOS.workflow()
    def one(i: int) -> int:
        return step(i)

    @DBOS.workflow()
    def fan_children(n: int) -> int:
        handles = [DBOS.start_workflow(one, i) for i in range(n)]
        return sum(h.get_result() for h in handles)

    DBOS.launch()
    loop = asyncio.new_event_loop()  # one loop for every async run: DBOS keeps per-loop state

    async def fan_async(n: int, instances: int) -> list[int]:
        handles = [await DBOS.start_workflow_async(fan, n) for _ in range(instances)]
        return [await h.get_result() for h in handles]

    def once(w: Workload) -> dict[str, Any]:
        started = time.perf_counter()
        if w.kind == "fan" and args.system != "dbos-children":
            results = loop.run_until_complete(fan_async(w.n, w.instances))
        else:
            workflow = chain if w.kind == "chain" else fan_children
            handles = [DBOS.start_workflow(workflow, w.n) for _ in range(w.instances)]
            results = [h.get_result() for h in handles]
        wall = time.perf_counter() - started
        if any(r != w.expected() for r in results):
            raise RuntimeError(f"{args.system}: results {set(results)}, expected {w.expected()}")
        return {"wall_s": wall}

    sqlite_mode = "WAL, synchronous=NORMAL" if wal else "default rollback journal, synchronous=FULL"
    fan_mode = (
        "child workflows via DBOS.start_workflow" if args.system == "dbos-children" else "async steps + asyncio.gather"
    )
    try:
        run_workload(
            args,
            once,
            versions={"dbos": version("dbos"), "sqlalchemy": version("sqlalchemy")},
            notes=f"SQLite system database ({sqlite_mode}); fan-out = {fan_mode}",
        )
    finally:
        DBOS.destroy()
        loop.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
