"""A DFApp with one small orchestrator per SDK feature, for tests/test_sdk_*.py.

Everything here is ordinary user code on the real `azure.durable_functions` SDK: the
tests drive it through `devhost.harness.DurableHarness` exactly as the Functions host
and the Durable extension would. Module-level state is limited to what the tests need
to observe or steer from outside (attempt counters, the nondeterminism switch).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()

# How many times each flaky activity key has been attempted (reset by the tests).
ATTEMPTS: Counter[str] = Counter()

# Which activity `drifting` calls first (None: none): changing it between episodes makes
# the orchestrator nondeterministic on purpose.
DRIFT: dict[str, str | None] = {"activity": "step_a"}

RETRY_INTERVAL_MS = 5_000


# ----------------------------------------------------------------------------- activities
@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="name")
async def say_hello_async(name: str) -> str:
    await asyncio.sleep(0)
    return f"Hello async {name}"


@app.activity_trigger(input_name="payload")
def echo(payload: Any) -> Any:
    return payload


@app.activity_trigger(input_name="message")
def fail_always(message: str) -> str:
    raise ValueError(message)


@app.activity_trigger(input_name="spec")
def flaky(spec: dict[str, Any]) -> dict[str, Any]:
    """Fails `spec["failures"]` times for `spec["key"]`, then succeeds; reports the attempt number."""
    key = spec["key"]
    ATTEMPTS[key] += 1
    attempt = ATTEMPTS[key]
    if attempt <= spec["failures"]:
        raise RuntimeError(f"{key} attempt {attempt} failed")
    return {"key": key, "attempt": attempt}


@app.activity_trigger(input_name="value")
def step_a(value: Any) -> str:
    return "a"


@app.activity_trigger(input_name="value")
def step_b(value: Any) -> str:
    return "b"


# ------------------------------------------------------------------------------- entities
@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    op = context.operation_name
    if op == "add":
        value += context.get_input()
        context.set_state(value)
        context.set_result(value)
    elif op == "get":
        context.set_result(value)
    elif op == "reset":
        context.set_state(0)
        context.set_result(0)
    elif op == "fail":
        raise ValueError(f"counter cannot {context.get_input()}")
    else:
        raise ValueError(f"unknown operation {op}")


# -------------------------------------------------------------------------- orchestrators
@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    name = context.get_input()
    first = yield context.call_activity("say_hello", name)
    second = yield context.call_activity("say_hello_async", name)
    third = yield context.call_activity("echo", {"n": 1, "items": [name]})
    return [first, second, third]


@app.orchestration_trigger(context_name="context")
def activity_error_handled(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("fail_always", context.get_input())
    except Exception as exc:  # the activity's failure surfaces as an exception here
        after = yield context.call_activity("say_hello", "after failure")
        return {"caught": str(exc), "after": after}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def activity_error_unhandled(context: df.DurableOrchestrationContext):
    yield context.call_activity("fail_always", context.get_input())
    return "not reached"


@app.orchestration_trigger(context_name="context")
def retry_activity(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    options = df.RetryOptions(RETRY_INTERVAL_MS, spec["max_attempts"])
    try:
        result = yield context.call_activity_with_retry("flaky", options, spec)
    except Exception as exc:
        if spec.get("catch"):
            return {"error": str(exc)}
        raise
    return result


@app.orchestration_trigger(context_name="context")
def retry_in_task_all(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    options = df.RetryOptions(RETRY_INTERVAL_MS, 3)
    both = yield context.task_all(
        [
            context.call_activity_with_retry("flaky", options, spec),
            context.call_activity("say_hello", "B"),
        ]
    )
    last = yield context.call_activity("say_hello", "C")
    return [both[0], both[1], last]


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    names = context.get_input()
    results = yield context.task_all([context.call_activity("say_hello", n) for n in names])
    return results


@app.orchestration_trigger(context_name="context")
def fan_out_with_failure(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("say_hello", "ok"), context.call_activity("fail_always", "one of many broke")]
    try:
        yield context.task_all(tasks)
    except Exception as exc:
        return {"error": str(exc)}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def first_of_two_events(context: df.DurableOrchestrationContext):
    left = context.wait_for_external_event("Left")
    right = context.wait_for_external_event("Right")
    winner = yield context.task_any([left, right])
    return {"winner": "Left" if winner == left else "Right", "value": winner.result}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """Human approval with a timeout (input: timeout in hours), then one activity either way."""
    hours = context.get_input()
    deadline = context.current_utc_datetime + timedelta(hours=hours)
    context.set_custom_status({"stage": "awaiting approval", "deadline": deadline.isoformat()})
    timer = context.create_timer(deadline)
    decision = context.wait_for_external_event("Approval")
    winner = yield context.task_any([decision, timer])
    if winner == decision:
        timer.cancel()
        note = yield context.call_activity("say_hello", "approver")
        outcome = {"approved": decision.result, "note": note}
    else:
        outcome = {"approved": None, "timed_out_at": context.current_utc_datetime.isoformat()}
    context.set_custom_status({"stage": "decided"})
    return outcome


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    """Sleeps for the input's number of hours; reports when it asked and when it woke."""
    hours = context.get_input()
    started = context.current_utc_datetime
    fire_at = started + timedelta(hours=hours)
    yield context.create_timer(fire_at)
    return {
        "started": started.isoformat(),
        "fire_at": fire_at.isoformat(),
        "woke": context.current_utc_datetime.isoformat(),
    }


@app.orchestration_trigger(context_name="context")
def wait_after_activity(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("say_hello", "first")
    event = yield context.wait_for_external_event("Go")
    return [greeting, event]


@app.orchestration_trigger(context_name="context")
def two_waits(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("Step")
    context.set_custom_status({"first": first})
    second = yield context.wait_for_external_event("Step")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def child_double(context: df.DurableOrchestrationContext):
    value = context.get_input()
    echoed = yield context.call_activity("echo", value)
    return {"doubled": echoed * 2, "me": context.instance_id, "parent": context.parent_instance_id}


@app.orchestration_trigger(context_name="context")
def child_flaky(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("flaky", context.get_input())
    return {"attempt": result["attempt"], "me": context.instance_id}


@app.orchestration_trigger(context_name="context")
def child_fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("say_hello", "child")
    raise ValueError(f"child gave up on {context.get_input()}")


@app.orchestration_trigger(context_name="context")
def child_waits(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def parent_of(context: df.DurableOrchestrationContext):
    """Input {"child", "input", "instance_id"?, "catch"?}: calls one sub-orchestrator."""
    spec = context.get_input()
    try:
        result = yield context.call_sub_orchestrator(spec["child"], spec.get("input"), spec.get("instance_id"))
    except Exception as exc:
        if spec.get("catch"):
            return {"error": str(exc)}
        raise
    return {"child": result}


@app.orchestration_trigger(context_name="context")
def parent_with_retry(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    options = df.RetryOptions(RETRY_INTERVAL_MS, spec["max_attempts"])
    result = yield context.call_sub_orchestrator_with_retry("child_flaky", options, spec, spec.get("instance_id"))
    return result


@app.orchestration_trigger(context_name="context")
def counter_generations(context: df.DurableOrchestrationContext):
    state = context.get_input()
    greeting = yield context.call_activity("say_hello", f"generation {state['n']}")
    if state["n"] < state["limit"]:
        context.continue_as_new({"n": state["n"] + 1, "limit": state["limit"], "last": greeting})
        return None
    return {"n": state["n"], "last": greeting}


@app.orchestration_trigger(context_name="context")
def busy_then_wait(context: df.DurableOrchestrationContext):
    """Generation 0 is busy on a timer; generation 1 waits for the event sent meanwhile."""
    state = context.get_input()
    if state["gen"] == 0:
        yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
        context.continue_as_new({"gen": 1})
        return None
    value = yield context.wait_for_external_event("Go")
    return {"gen": state["gen"], "value": value}


@app.orchestration_trigger(context_name="context")
def collect_items(context: df.DurableOrchestrationContext):
    """One item per generation until `limit` items were collected."""
    state = context.get_input()
    item = yield context.wait_for_external_event("Item")
    items = [*state["items"], item]
    if len(items) < state["limit"]:
        context.continue_as_new({"items": items, "limit": state["limit"]})
        return None
    return items


@app.orchestration_trigger(context_name="context")
def replay_values(context: df.DurableOrchestrationContext):
    first_uuid = context.new_uuid()
    second_uuid = context.new_uuid()
    started = context.current_utc_datetime
    context.set_custom_status({"uuids": [first_uuid, second_uuid], "started": started.isoformat()})
    yield context.wait_for_external_event("Go")
    after_event = context.current_utc_datetime
    yield context.call_activity("say_hello", "replay")
    after_activity = context.current_utc_datetime
    late_uuid = context.new_uuid()
    yield context.create_timer(after_activity + timedelta(minutes=5))
    return {
        "uuids": [first_uuid, second_uuid],
        "late_uuid": late_uuid,
        "started": started.isoformat(),
        "after_event": after_event.isoformat(),
        "after_activity": after_activity.isoformat(),
        "after_timer": context.current_utc_datetime.isoformat(),
    }


@app.orchestration_trigger(context_name="context")
def entity_user(context: df.DurableOrchestrationContext):
    entity = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity, "add", 5)
    after_add = yield context.call_entity(entity, "add", 10)
    read = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "fail", "divide by zero")
        failure = None
    except Exception as exc:
        failure = str(exc)
    reset = yield context.call_entity(entity, "reset")
    context.signal_entity(entity, "add", 2)
    final = yield context.call_entity(entity, "get")
    return {"after_add": after_add, "read": read, "failure": failure, "reset": reset, "final": final}


@app.orchestration_trigger(context_name="context")
def entity_failure_unhandled(context: df.DurableOrchestrationContext):
    yield context.call_entity(df.EntityId("Counter", context.get_input()), "fail", "explode")
    return "not reached"


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext):
    yield context.call_activity("say_hello", "before the crash")
    raise ValueError(f"kaboom: {context.get_input()}")


@app.orchestration_trigger(context_name="context")
def status_waiter(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    value = yield context.wait_for_external_event("Go")
    context.set_custom_status({"stage": "done", "value": value})
    return value


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    first = None
    if DRIFT["activity"]:  # a "new version" may call another activity first, or none at all
        first = yield context.call_activity(DRIFT["activity"], None)
    yield context.wait_for_external_event("Go")
    if context.get_input() == "stop after the wait":
        return [first]
    second = yield context.call_activity("say_hello", "after")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def race_then_wait(context: df.DurableOrchestrationContext):
    """An event beats a timer (input: hours); the orchestrator then keeps waiting for another event."""
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=context.get_input()))
    first = context.wait_for_external_event("First")
    winner = yield context.task_any([first, timer])
    if winner != first:
        return "timer won"
    timer.cancel()
    second = yield context.wait_for_external_event("Second")
    return [first.result, second]


@app.orchestration_trigger(context_name="context")
def entity_fan_out(context: df.DurableOrchestrationContext):
    keys = context.get_input()
    calls = [context.call_entity(df.EntityId("Counter", key), "add", 1) for key in keys]
    calls += [context.call_entity(df.EntityId("Counter", keys[0]), "add", 1) for _ in range(2)]
    results = yield context.task_all(calls)
    return results


@app.orchestration_trigger(context_name="context")
def sub_fan_out(context: df.DurableOrchestrationContext):
    values = context.get_input()
    results = yield context.task_all([context.call_sub_orchestrator("child_double", v) for v in values])
    return [r["doubled"] for r in results]


@app.orchestration_trigger(context_name="context")
def call_by_name(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    try:
        result = yield context.call_activity(spec["activity"], spec.get("input"))
    except Exception as exc:
        return {"error": str(exc)}
    return result
