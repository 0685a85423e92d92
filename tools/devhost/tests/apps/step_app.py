"""Small orchestrators for the pure-step tests (tests/test_orchestration_step.py).

Activities and entities exist only so the step's name checks pass: the pure step never runs
them, the tests build their results.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="value")
def work(value: Any) -> Any:
    return value


@app.activity_trigger(input_name="value")
def compensate(value: Any) -> Any:
    return value


@app.entity_trigger(context_name="context", entity_name="Tally")
def tally(context: df.DurableEntityContext) -> None:
    context.set_result(None)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("work", "one")
    second = yield context.call_activity("work", "two")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("work", n) for n in range(context.get_input())])
    return results


@app.orchestration_trigger(context_name="context")
def wait_go(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(1000, context.get_input())
    try:
        result = yield context.call_activity_with_retry("work", options, "flaky")
    except Exception as exc:
        return {"gave_up": str(exc)}
    return result


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext):
    """One "Item" event per execution; continues as new until `limit` items."""
    state = context.get_input()
    item = yield context.wait_for_external_event("Item")
    items = [*state["items"], item]
    if len(items) < state["limit"]:
        context.continue_as_new({"items": items, "limit": state["limit"]})
        return None
    return items


@app.orchestration_trigger(context_name="context")
def ask_entity(context: df.DurableOrchestrationContext):
    value = yield context.call_entity(df.EntityId("Tally", "k"), "get")
    return value


@app.orchestration_trigger(context_name="context")
def timeout_race(context: df.DurableOrchestrationContext):
    """task_any of an activity and a one-hour timer; cancels the timer only if told to."""
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    call = context.call_activity("work", "race")
    winner = yield context.task_any([call, timer])
    if winner == call and context.get_input() == "cancel":
        timer.cancel()
    return "activity" if winner == call else "timer"


# Steered by tests/test_engine_fidelity.py between episodes, to change the code under a running instance.
DRIFT: dict[str, Any] = {"op": "add", "key": "k", "wait_first": True}


@app.orchestration_trigger(context_name="context")
def child_race(context: df.DurableOrchestrationContext):
    """A sub-orchestration races a timer; when the timer wins, the orchestrator gives up by raising."""
    child = context.call_sub_orchestrator("wait_go", None, "the-child")
    timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    winner = yield context.task_any([child, timer])
    if winner == timer:
        raise TimeoutError("the child took too long")
    return winner.result


@app.orchestration_trigger(context_name="context")
def compensating(context: df.DurableOrchestrationContext):
    try:
        yield context.task_all([context.call_activity("work", "fails fast"), context.call_activity("work", "slow")])
    except Exception:
        yield context.call_activity("compensate", "undo")
        return "compensated"
    return "ok"


@app.orchestration_trigger(context_name="context")
def signal_then_fail(context: df.DurableOrchestrationContext):
    yield context.call_activity("work", "first")
    context.signal_entity(df.EntityId("Tally", "k"), "add", 5)
    raise ValueError("failed after signalling")


@app.orchestration_trigger(context_name="context")
def big_status(context: df.DurableOrchestrationContext):
    context.set_custom_status(context.get_input())
    yield context.call_activity("work", "after the status")
    return "done"


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    """Signals an entity and waits; DRIFT changes the operation, the target or where the wait sits."""
    if DRIFT["wait_first"]:
        yield context.wait_for_external_event("Go")
    context.signal_entity(df.EntityId("Tally", DRIFT["key"]), DRIFT["op"], 1)
    if not DRIFT["wait_first"]:
        yield context.wait_for_external_event("Go")
    value = yield context.call_activity("work", "after")
    return value


@app.orchestration_trigger(context_name="context")
def sub_with_id(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator("wait_go", None, context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def status_generations(context: df.DurableOrchestrationContext):
    """Generation 0 sets a custom status and continues as new; generation 1 sets none."""
    gen = context.get_input()
    if gen == 0:
        context.set_custom_status("set by generation 0")
        yield context.call_activity("work", "gen 0")
        context.continue_as_new(1)
        return None
    yield context.wait_for_external_event("Go")
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def long_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(7 * 24 * 3600 * 1000, 2)  # a first retry interval of 7 days
    result = yield context.call_activity_with_retry("work", options, "flaky")
    return result


@app.activity_trigger(input_name="value")
def chained_failure(value: Any) -> Any:
    try:
        int(value)
    except ValueError as exc:
        raise RuntimeError(f"cannot use {value!r}") from exc
    return value


@app.orchestration_trigger(context_name="context")
def call_chained_failure(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("chained_failure", context.get_input())
    return result


@app.entity_trigger(context_name="context", entity_name="Unsaveable")
def unsaveable(context: df.DurableEntityContext) -> None:
    context.set_state({"a set cannot be JSON": {1, 2}})
    context.set_result("stored?")


@app.orchestration_trigger(context_name="context")
def call_unsaveable(context: df.DurableOrchestrationContext):
    try:
        result = yield context.call_entity(df.EntityId("Unsaveable", "k"), "put")
    except Exception as exc:
        return {"error": str(exc)}
    return result


@app.orchestration_trigger(context_name="context")
def fan_out_to_a_missing_activity(context: df.DurableOrchestrationContext):
    results = yield context.task_all(
        [
            context.call_activity("work", "ok"),
            context.call_activity("missing", "x"),
            context.call_activity("work", "never sent"),
        ]
    )
    return results


@app.orchestration_trigger(context_name="context")
def sleep_days(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(days=context.get_input()))
    return "woke"


@app.orchestration_trigger(context_name="context")
def approve_then_work(context: df.DurableOrchestrationContext):
    """Waits for an approval, shows it in its custom status, then calls an activity (A13: while suspended)."""
    approval = yield context.wait_for_external_event("Approve")
    context.set_custom_status(f"approved by {approval}")
    result = yield context.call_activity("work", approval)
    return result
