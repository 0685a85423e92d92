"""Small orchestrators for the replay-checker tests (a real DFApp, run on the real SDK).

`GREETING_ACTIVITY` is a module-level switch that `hello_sequence` reads, so a test can
"change the code" between recording and replay without a second module. `app_v2` registers
a different orchestrator under the name `hello_sequence`: the other way code changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

GREETING_ACTIVITY = "say_hello"
# How many cities `fan_out_flow` greets (a test lowers it to make the fan-out narrower).
FAN_OUT_LIMIT: int | None = None


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    first = yield context.call_activity(GREETING_ACTIVITY, "Tokyo")
    second = yield context.call_activity("shout", first)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fan_out_flow(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Fan-out, a timer racing an external event, a plain timer, then a fan-in activity."""
    cities: list[str] = context.get_input()["cities"]
    if FAN_OUT_LIMIT is not None:
        cities = cities[:FAN_OUT_LIMIT]
    greetings = yield context.task_all([context.call_activity("say_hello", city) for city in cities])
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    approval = context.wait_for_external_event("Approve")
    winner = yield context.task_any([deadline, approval])
    if winner == approval:
        deadline.cancel()
        decision: Any = approval.result
    else:
        decision = "timed out"
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    summary = yield context.call_activity("shout", " / ".join(greetings))
    return {"greetings": greetings, "decision": decision, "summary": summary}


@app.orchestration_trigger(context_name="context")
def parent_flow(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """A sub-orchestration, an activity retried after a failure, and an entity call."""
    child = yield context.call_sub_orchestrator("hello_sequence", None, f"{context.instance_id}-child")
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    flaky = yield context.call_activity_with_retry("flaky", retry, "x")
    entity = df.EntityId("counter", "k1")
    context.signal_entity(entity, "add", 5)
    total = yield context.call_entity(entity, "get")
    return {"child": child, "flaky": flaky, "total": total}


@app.orchestration_trigger(context_name="context")
def waits_for_event(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    value = yield context.wait_for_external_event(EVENT_NAME)
    return value


EVENT_NAME = "Go"


@app.orchestration_trigger(context_name="context")
def clock_reader(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Output built from episode times: the replay must run each episode at its recorded start time."""
    started = context.current_utc_datetime
    yield context.call_activity("say_hello", "clock")
    after_activity = context.current_utc_datetime
    yield context.create_timer(after_activity + timedelta(hours=2))
    return [
        started.isoformat(),
        after_activity.isoformat(),
        context.current_utc_datetime.isoformat(),
        context.new_uuid(),
    ]


@app.orchestration_trigger(context_name="context")
def stamped_wait(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Reads the time in its first episode, which schedules nothing (an HTTP history loses that time)."""
    started = context.current_utc_datetime
    value = yield context.wait_for_external_event("Go")
    return [started.isoformat(), value]


@app.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """An eternal-style orchestration: wait a minute, then continue as new with n - 1."""
    n: int = context.get_input()
    if n <= 0:
        return "done"
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    context.continue_as_new(n - 1)
    return None


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="name")
def say_goodbye(name: str) -> str:
    return f"Goodbye {name}"


@app.activity_trigger(input_name="text")
def shout(text: str) -> str:
    return text.upper()


FLAKY_CALLS: list[str] = []


@app.activity_trigger(input_name="value")
def flaky(value: str) -> str:
    FLAKY_CALLS.append(value)
    if len(FLAKY_CALLS) % 2 == 1:
        raise RuntimeError("transient failure")
    return f"ok {value}"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_state(value)
    context.set_result(value)


# A second version of the app: `hello_sequence` now greets with a different activity and
# calls it first under another sequence number (a "deployed a change" scenario).
app_v2 = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app_v2.orchestration_trigger(context_name="context", orchestration="hello_sequence")
def hello_sequence_v2(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    first = yield context.call_activity("say_goodbye", "Tokyo")
    second = yield context.call_activity("shout", first)
    return [first, second]


@app_v2.activity_trigger(input_name="name", activity="say_goodbye")
def say_goodbye_v2(name: str) -> str:
    return f"Goodbye {name}"


@app_v2.activity_trigger(input_name="text", activity="shout")
def shout_v2(text: str) -> str:
    return text.upper()
