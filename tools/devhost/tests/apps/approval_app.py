"""A small approval process used to test the harness itself (not the sample app)."""

from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def approval(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    request = ctx.get_input()
    ctx.set_custom_status({"phase": "waiting"})
    deadline = ctx.current_utc_datetime + timedelta(days=request.get("days", 7))
    timeout = ctx.create_timer(deadline)
    answer = ctx.wait_for_external_event("Approval")
    winner = yield ctx.task_any([answer, timeout])
    if winner == answer:
        timeout.cancel()
        receipt = yield ctx.call_activity("notify", {"to": request["owner"], "approved": answer.result})
        ctx.set_custom_status({"phase": "done"})
        return {"outcome": "approved" if answer.result else "rejected", "receipt": receipt}
    ctx.set_custom_status({"phase": "expired"})
    return {"outcome": "expired", "at": ctx.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="ctx")
def reminders(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    sent = []
    for day in range(3):
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=1))
        sent.append((yield ctx.call_activity("notify", {"to": "ops", "day": day + 1})))
    return sent


@app.activity_trigger(input_name="message")
def notify(message: dict) -> str:
    return f"real:{message['to']}"
