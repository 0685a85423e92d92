"""A tiny app for fork tests: two steps, the second broken until a test "fixes" it."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

app = df.DFApp()
BROKEN = {"second": True}


@app.orchestration_trigger(context_name="context")
def two_steps(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    first = yield context.call_activity("step", "one")
    context.set_custom_status({"after": first})
    gate = yield context.wait_for_external_event("Go")
    second = yield context.call_activity("step", "two")
    return [first, gate, second]


@app.activity_trigger(input_name="name")
def step(name: str) -> Any:
    if name == "two" and BROKEN["second"]:
        raise RuntimeError("step two is broken")
    return f"did {name}"
