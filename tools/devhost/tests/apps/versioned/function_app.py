"""An app shaped like Microsoft's samples-v2/orchestration_versioning (azure-functions-durable-python):
its contract, our code. An HTTP starter that passes `?version=` to `client.start_new(version=)`; an
orchestrator that branches on `context.version`, waits for "Continue" (the moment to redeploy), then calls a
sub-orchestrator with an explicit version and one without; the sub-orchestrator returns its own version.

The sample's README states the outputs: under defaultVersion 1.0, version 1.0 and activity A; started under
1.0 and resumed after defaultVersion became 2.0, the instance keeps 1.0 and A, and only the sub-orchestration
created after the change gets 2.0. Also used by the harness tests: `retrying_parent` (a versioned
sub-orchestration with retries) and `renewing` (continue-as-new keeps the version).
"""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}")
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):  # type: ignore[no-untyped-def]
    name = req.route_params["functionName"]
    version = req.params.get("version")
    instance_id = await client.start_new(name, version=version) if version else await client.start_new(name)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def my_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    branch = yield context.call_activity("activity_a" if context.version == "1.0" else "activity_b")
    context.set_custom_status("Waiting for Continue event...")
    yield context.wait_for_external_event("Continue")
    context.set_custom_status("Continue event received")
    explicit = yield context.call_sub_orchestrator("my_sub_orchestrator", version="0.9")
    default = yield context.call_sub_orchestrator("my_sub_orchestrator")
    return [
        f"Orchestration version: {context.version}",
        f"Suborchestration version (explicit): {explicit}",
        f"Suborchestration version (default): {default}",
        branch,
    ]


@app.orchestration_trigger(context_name="context")
def my_sub_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return context.version


@app.activity_trigger(input_name="input")
def activity_a(input: str) -> str:
    return "Hello from A!"


@app.activity_trigger(input_name="input")
def activity_b(input: str) -> str:
    return "Hello from B!"


@app.orchestration_trigger(context_name="context")
def retrying_parent(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    return (yield context.call_sub_orchestrator_with_retry("flaky_child", retry, context.get_input(), version="0.8"))


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    attempts = yield context.call_activity("count_attempt", context.get_input())
    if attempts < 3:
        raise RuntimeError(f"attempt {attempts} failed")
    return f"{context.version} after {attempts} attempts"


ATTEMPTS: dict[str, int] = {}


@app.activity_trigger(input_name="key")
def count_attempt(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    return ATTEMPTS[key]


@app.orchestration_trigger(context_name="context")
def renewing(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    round_ = context.get_input() or 0
    if round_ < 2:
        context.continue_as_new(round_ + 1)
        return None
    return f"{context.version} in round {round_}"
