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
