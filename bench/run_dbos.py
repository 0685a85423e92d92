"""DBOS Transact on SQLite (a fresh database file in a temp directory), in `.venv-bench`.

Workflows and steps are plain sync functions with `@DBOS.workflow()` / `@DBOS.step()`.
Fan-out/fan-in is the idiomatic DBOS form for running work in parallel durably: the parent
workflow starts one child workflow per item with `DBOS.start_workflow` (each child runs
one step) and then collects `handle.get_result()` in order; DBOS checkpoints each child's
handle in the parent, so a recovered parent waits for the same children. (A DBOS Queue
would add its polling interval, 1 s by default, to every dequeue.) The 50 concurrent
orchestrations are 50 `DBOS.start_workflow` calls from the client side.
"""

from __future__ import annotations

import logging
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_common import Workload, parse_args, run_workload, step_body


def main() -> None:
    args = parse_args(__doc__)
    # Peer packages are imported here only: this file is linted and imported in `.venv` too.
    from dbos import DBOS

    tmp = tempfile.TemporaryDirectory(prefix="bench-dbos-")
    db = Path(tmp.name) / "dbos.sqlite"
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{db}", "log_level": "WARNING"})
    logging.getLogger("dbos").setLevel(logging.WARNING)

    @DBOS.step()
    def step(value: int) -> int:
        return step_body(value)

    @DBOS.workflow()
    def chain(n: int) -> int:
        value = 0
        for _ in range(n):
            value = step(value)
        return value

    @DBOS.workflow()
    def one(i: int) -> int:
        return step(i)

    @DBOS.workflow()
    def fan(n: int) -> int:
        handles = [DBOS.start_workflow(one, i) for i in range(n)]
        return sum(h.get_result() for h in handles)

    DBOS.launch()

    def once(w: Workload) -> dict[str, Any]:
        workflow = chain if w.kind == "chain" else fan
        started = time.perf_counter()
        handles = [DBOS.start_workflow(workflow, w.n) for _ in range(w.instances)]
        results = [h.get_result() for h in handles]
        wall = time.perf_counter() - started
        if any(r != w.expected() for r in results):
            raise RuntimeError(f"dbos: results {set(results)}, expected {w.expected()}")
        return {"wall_s": wall}

    try:
        run_workload(args, once, versions={"dbos": version("dbos"), "sqlalchemy": version("sqlalchemy")},
                     notes="SQLite system database; fan-out = child workflows via DBOS.start_workflow")
    finally:
        DBOS.destroy()
        tmp.cleanup()


if __name__ == "__main__":
    main()
