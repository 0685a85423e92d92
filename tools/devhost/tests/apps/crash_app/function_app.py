"""The app the crash-safety tests run under devhost: a fan-out, a durable timer, a chain.

Every value is computed from the input alone, so the test knows each instance's exact
output (see `expected_output` in test_crash_safety.py, which must match this file).
"""

import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def crash_flow(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    seed, fan, chain = spec["seed"], spec["fan"], spec["chain"]
    parts = yield context.task_all([context.call_activity("fan_part", {"seed": seed, "i": i}) for i in range(fan)])
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=spec["timer"]))
    value = sum(parts)
    for step in range(chain):
        value = yield context.call_activity("chain_step", {"value": value, "step": step})
    return {"seed": seed, "parts": parts, "final": value}


@app.activity_trigger(input_name="item")
def fan_part(item: dict) -> int:
    time.sleep(0.05)
    return item["seed"] * 1000 + item["i"] * item["i"]


@app.activity_trigger(input_name="item")
def chain_step(item: dict) -> int:
    return (item["value"] * 31 + item["step"] + 7) % 1_000_003
