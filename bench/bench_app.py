"""The DFApp every devhost benchmark runs: a sequential chain and a fan-out/fan-in of `step`."""

from __future__ import annotations

import azure.durable_functions as df
from bench_common import step_body

app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def chain(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    n = ctx.get_input()
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity("step", value)
    return value


@app.orchestration_trigger(context_name="ctx")
def fan(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    n = ctx.get_input()
    results = yield ctx.task_all([ctx.call_activity("step", i) for i in range(n)])
    return sum(results)


@app.activity_trigger(input_name="value")
def step(value: int) -> int:
    return step_body(value)
