"""A small DFApp that exercises the devhost server: HTTP starters, every SDK client call,
sync/async HTTP functions, errors, and non-HTTP triggers. Used in-process by the tests and
as a script root by the CLI smoke test."""

import json
import logging
import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# What non-HTTP functions saw, for in-process assertions.
CALLS: list[tuple[str, object]] = []


# ----------------------------------------------------------------- durable functions
@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    name = context.get_input() or "world"
    if isinstance(name, dict):
        name = name.get("name", "world")
    results = []
    for suffix in ("1", "2", "3"):
        results.append((yield context.call_activity("say_hello", f"{name}-{suffix}")))
    return results


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"


@app.orchestration_trigger(context_name="context")
def wait_for_approval(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    approval = yield context.wait_for_external_event("approve")
    context.set_custom_status({"stage": "done"})
    return {"approved": approval}


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    raise ValueError("orchestrator exploded")
    yield  # pragma: no cover


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    op = context.operation_name
    if op == "delete":  # what DELETE entities/{name}/{key} signals
        context.destruct_on_exit()
        return
    if op == "add":
        value += context.get_input()
    elif op == "reset":
        value = 0
    context.set_state(value)
    context.set_result(value)


# ------------------------------------------------------------------- HTTP starters
@app.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = req.get_json() if body else None
    instance_id = await client.start_new(req.route_params["name"], req.route_params.get("instance_id"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="wait/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json() if req.get_body() else None)
    return await client.wait_for_completion_or_create_check_status_response(req, instance_id, 10000, 100)


def _status_json(status) -> dict:
    if not status:
        return {"exists": False}
    out = status.to_json()
    out["exists"] = True
    out["historyEvents"] = getattr(status, "historyEvents", None)
    return out


@app.route(route="sdk/{op}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def sdk(req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context) -> func.HttpResponse:
    """One SDK client call per request, arguments in the JSON body, result as JSON."""
    op = req.route_params["op"]
    args = req.get_json() if req.get_body() else {}
    result: object
    if op == "start_new":
        result = await client.start_new(args["name"], args.get("instance_id"), args.get("input"))
    elif op == "get_status":
        result = _status_json(
            await client.get_status(
                args["instance_id"],
                show_history=args.get("history", False),
                show_history_output=args.get("history_output", False),
                show_input=args.get("show_input", False),
            )
        )
    elif op == "get_status_all":
        result = [s.instance_id for s in await client.get_status_all()]
    elif op == "get_status_by":
        statuses = [df.OrchestrationRuntimeStatus(s) for s in args.get("runtime_status", [])] or None
        result = [
            s.instance_id
            for s in await client.get_status_by(runtime_status=statuses, instance_id_prefix=args.get("prefix"))
        ]
    elif op == "raise_event":
        await client.raise_event(args["instance_id"], args["event"], args.get("data"))
        result = "ok"
    elif op == "terminate":
        await client.terminate(args["instance_id"], args.get("reason", "stop"))
        result = "ok"
    elif op == "suspend":
        await client.suspend(args["instance_id"], "pause")
        result = "ok"
    elif op == "resume":
        await client.resume(args["instance_id"], "go on")
        result = "ok"
    elif op == "purge":
        result = (await client.purge_instance_history(args["instance_id"])).instances_deleted
    elif op == "purge_by":
        from datetime import datetime

        purged = await client.purge_instance_history_by(datetime(2000, 1, 1), None, None)
        result = purged.instances_deleted
    elif op == "restart":
        result = await client.restart(args["instance_id"], args.get("new_id", True))
    elif op == "signal_entity":
        await client.signal_entity(df.EntityId(args["entity"], args["key"]), args["operation"], args.get("input"))
        result = "ok"
    elif op == "read_entity":
        state = await client.read_entity_state(df.EntityId(args["entity"], args["key"]))
        result = {"exists": state.entity_exists, "state": state.entity_state}
    elif op == "rewind":
        await client.rewind(args["instance_id"], "again")
        result = "ok"
    elif op == "invocation_id":
        result = context.invocation_id
    else:
        return func.HttpResponse(json.dumps({"error": f"unknown op {op}"}), status_code=400)
    return func.HttpResponse(json.dumps(result), mimetype="application/json")


# ------------------------------------------------------------------- plain HTTP
@app.route(route="echo/{id:int}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Sync function: runs on the thread pool."""
    body = {
        "method": req.method,
        "url": req.url,
        "id": req.route_params.get("id"),
        "params": dict(req.params),
        "header": req.headers.get("x-test"),
        "json": req.get_json() if req.get_body() else None,
        "setting": os.environ.get("SAMPLE_SETTING"),
    }
    return func.HttpResponse(json.dumps(body), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json")


@app.route(route="hello")
def hello(req: func.HttpRequest) -> str:
    return "hello text"


@app.route(route="boom")
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaboom")


@app.route(route="bad-return")
def bad_return(req: func.HttpRequest):
    return {"not": "allowed"}


# ------------------------------------------------------------------- other triggers
@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    CALLS.append(("tick", timer.past_due))
    logging.info("tick")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="requests", connection="ServiceBusConnection")
@app.durable_client_input(client_name="client")
async def sb_start(msg: func.ServiceBusMessage, client: df.DurableOrchestrationClient) -> None:
    name = msg.get_body().decode()
    instance_id = await client.start_new("hello_sequence", f"sb-{name}", name)
    CALLS.append(("sb_start", instance_id))


@app.queue_trigger(arg_name="item", queue_name="work-items", connection="AzureWebJobsStorage")
def queue_item(item: func.QueueMessage) -> None:
    CALLS.append(("queue_item", item.get_body().decode()))


@app.queue_trigger(arg_name="item", queue_name="always-fails", connection="AzureWebJobsStorage")
def queue_fails(item: func.QueueMessage) -> None:
    CALLS.append(("queue_fails", item.dequeue_count))
    raise RuntimeError("cannot process " + item.get_body().decode())
