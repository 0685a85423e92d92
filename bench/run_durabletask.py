"""durabletask-python on its in-memory test backend (`durabletask.testing`), in `.venv-bench`.

The backend is the package's own gRPC sidecar stand-in (`create_test_backend`), served
in this process on a free loopback port; a `TaskHubGrpcWorker` (default concurrency
options) and a `TaskHubGrpcClient` talk to it over gRPC, as the package's docs show.
Episodes are timed by wrapping `_OrchestrationExecutor.execute` (one replay each).
"""

from __future__ import annotations

import logging
import socket
import time
from importlib.metadata import version
from typing import Any

from bench_common import Workload, parse_args, run_workload, step_body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    args = parse_args(__doc__)
    # Peer packages are imported here only: this file is linted and imported in `.venv` too.
    from durabletask import client as dt_client
    from durabletask import task as dt_task
    from durabletask import worker as dt_worker
    from durabletask.testing import create_test_backend

    # Quiet as devhost is by default (its per-activity lines are INFO, off unless configured):
    # durabletask logs two INFO lines per episode otherwise.
    quiet = logging.getLogger("bench.durabletask")
    quiet.setLevel(logging.WARNING)

    episodes: list[float] = []
    original = dt_worker._OrchestrationExecutor.execute

    def timed_execute(self: Any, *a: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            episodes.append(time.perf_counter() - started)

    dt_worker._OrchestrationExecutor.execute = timed_execute  # type: ignore[method-assign]

    def step(ctx: Any, value: int) -> int:
        return step_body(value)

    def chain(ctx: Any, n: int):  # type: ignore[no-untyped-def]
        value = 0
        for _ in range(n):
            value = yield ctx.call_activity(step, input=value)
        return value

    def fan(ctx: Any, n: int):  # type: ignore[no-untyped-def]
        results = yield dt_task.when_all([ctx.call_activity(step, input=i) for i in range(n)])
        return sum(results)

    port = _free_port()
    backend = create_test_backend(port=port, max_history_size=100_000)
    address = f"127.0.0.1:{port}"
    worker = dt_worker.TaskHubGrpcWorker(host_address=address, logger=quiet)
    worker.add_orchestrator(chain)
    worker.add_orchestrator(fan)
    worker.add_activity(step)
    worker.start()
    client = dt_client.TaskHubGrpcClient(host_address=address, logger=quiet)

    def once(w: Workload) -> dict[str, Any]:
        episodes.clear()
        orchestrator = chain if w.kind == "chain" else fan
        started = time.perf_counter()
        ids = [client.schedule_new_orchestration(orchestrator, input=w.n) for _ in range(w.instances)]
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=600)
            if state is None or state.runtime_status != dt_client.OrchestrationStatus.COMPLETED:
                raise RuntimeError(f"durabletask {iid}: {state}")
            if int(state.serialized_output or "0") != w.expected():
                raise RuntimeError(f"durabletask {iid}: result {state.serialized_output}, expected {w.expected()}")
        wall = time.perf_counter() - started
        return {"wall_s": wall, "episodes_s": list(episodes)}

    try:
        run_workload(
            args,
            once,
            versions={"durabletask": version("durabletask"), "grpcio": version("grpcio")},
            notes="in-memory backend over loopback gRPC; worker with default ConcurrencyOptions",
        )
    finally:
        worker.stop()
        client.close()
        backend.stop()


if __name__ == "__main__":
    main()
