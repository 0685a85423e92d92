"""OpenTelemetry spans: one trace from the HTTP request that starts a rollout to its last activity.

A real DevHost on loopback with a memory store: an upstream caller's `traceparent` reaches an HTTP
starter, whose unmodified SDK client calls devhost's Durable API (the SDK sends the current
context as `traceparent`: azure/durable_functions/models/utils/http_utils.py). The orchestration
calls an activity, a sub-orchestration (which calls an activity) and an entity, then waits for an
event. The host is then stopped and a new host, with a new tracer provider (a new process, as far
as tracing knows), finishes it: the context must come from history, not memory.

Span names, kinds and attributes are DTFx's (Azure/durabletask src/DurableTask.Core/Tracing/
TraceHelper.cs; see devhost/otel_spans.py for the line map); the parent/child links are
DTFx's V2 shape: orchestration -> activity (client) -> activity (server), orchestration ->
orchestration (client) -> child orchestration (server), orchestration -> entity (client) ->
entity (server) (TaskOrchestrationDispatcher.cs:1199-1205, 1323-1329; TaskEntityDispatcher.cs:700-777).

Tests internals (not devhost's public API): imports `devhost.index`, `devhost.server.app`,
`devhost.store.memory`, `devhost.tracing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import azure.durable_functions as df
import azure.functions as func
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from devhost import tracing
from devhost.index import AppIndex
from devhost.server.app import DevHost
from devhost.store.memory import MemoryStore

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="rollouts", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_rollout(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("rollout", None, {"version": "2.0"})
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="ctx")
def rollout(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    plan = yield ctx.call_activity("prepare", ctx.get_input()["version"])
    region = yield ctx.call_sub_orchestrator("update_region", plan)
    total = yield ctx.call_entity(df.EntityId("tally", "fleet"), "add", 3)
    ctx.set_custom_status("awaiting approval")
    approved = yield ctx.wait_for_external_event("approve")
    done = yield ctx.call_activity("finish", approved)
    return [plan, region, total, done]


@app.orchestration_trigger(context_name="ctx")
def update_region(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("finish", ctx.get_input()))


SEEN_IN_PREPARE: list[int] = []


@app.activity_trigger(input_name="value")
def prepare(value: str) -> str:
    SEEN_IN_PREPARE.append(trace.get_current_span().get_span_context().span_id)  # what user spans nest under
    return f"plan-{value}"


@app.activity_trigger(input_name="value")
def finish(value: Any) -> str:
    return f"done:{value}"


@app.entity_trigger(context_name="ectx")
def tally(ectx: df.DurableEntityContext) -> None:
    total = ectx.get_state(lambda: 0) + ectx.get_input()
    ectx.set_state(total)
    ectx.set_result(total)


CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


@pytest.fixture
def exporters() -> Iterator[list[InMemorySpanExporter]]:
    made: list[InMemorySpanExporter] = []
    yield made
    tracing.disable()


def _new_process(made: list[InMemorySpanExporter]) -> None:
    """A fresh tracer provider and exporter, as a restarted devhost would have."""
    tracing.disable()
    made.append(InMemorySpanExporter())
    tracing.enable(made[-1])


async def _wait(session: aiohttp.ClientSession, url: str, key: str, wanted: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with session.get(url) as resp:
            body = await resp.json()
        if body.get(key) == wanted:
            return body
        assert body.get("runtimeStatus") not in ("Failed", "Terminated"), body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.02)


async def test_one_trace_per_rollout_across_a_restart(exporters: list[InMemorySpanExporter]) -> None:
    SEEN_IN_PREPARE.clear()
    store = MemoryStore()
    index = AppIndex.from_app(app)
    _new_process(exporters)
    host = DevHost(index, store, hub="TraceHub", settings={}, enable_timers=False)
    port = await host.start(0)
    async with aiohttp.ClientSession() as session:
        headers = {"traceparent": f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"}
        async with session.post(f"http://127.0.0.1:{port}/api/rollouts", headers=headers) as resp:
            assert resp.status == 202, await resp.text()
            status_url = (await resp.json())["statusQueryGetUri"]
        await _wait(session, status_url, "customStatus", "awaiting approval")
    await host.stop()

    _new_process(exporters)
    host = DevHost(index, store, hub="TraceHub", settings={}, enable_timers=False)
    port = await host.start(0)
    async with aiohttp.ClientSession() as session:
        base = status_url.split("/runtime/")[0].rsplit(":", 1)[0] + f":{port}"
        status_url = f"{base}/runtime/{status_url.split('/runtime/', 1)[1]}"
        event_url = status_url.replace("?", "/raiseEvent/approve?", 1)
        async with session.post(event_url, json="yes") as resp:
            assert resp.status == 202, await resp.text()
        final = await _wait(session, status_url, "runtimeStatus", "Completed")
    await host.stop()
    assert final["output"] == ["plan-2.0", "done:plan-2.0", 3, "done:yes"]

    before, after = (list(e.get_finished_spans()) for e in exporters)
    spans = [s for s in before + after if s.context.trace_id == CALLER_TRACE]
    by_id = {s.context.span_id: s for s in spans}

    def one(name: str, kind: SpanKind, parent: ReadableSpan | None = None) -> ReadableSpan:
        found = [
            s
            for s in spans
            if s.name == name
            and s.kind == kind
            and (parent is None or (s.parent is not None and s.parent.span_id == parent.context.span_id))
        ]
        assert len(found) == 1, (name, kind, [(s.name, s.kind, s.attributes) for s in spans])
        return found[0]

    # The caller's request -> the HTTP function -> the SDK's call to the Durable API -> the start.
    http = one("POST /api/rollouts", SpanKind.SERVER)
    assert http.parent is not None and http.parent.span_id == CALLER_SPAN and http.parent.is_remote
    assert http.attributes is not None and http.attributes["http.response.status_code"] == 202
    api = one("POST /runtime/webhooks/durabletask/orchestrators/{functionName}", SpanKind.SERVER, http)
    create = one("create_orchestration:rollout", SpanKind.PRODUCER, api)

    # The execution's span is recorded once, when it ends (by the second host), under the create span.
    orch = one("orchestration:rollout", SpanKind.SERVER, create)
    assert orch in after and orch.status.status_code == StatusCode.OK
    assert orch.attributes is not None and orch.attributes["durabletask.task.status"] == "Completed"
    assert orch.attributes["durabletask.type"] == "orchestration"

    # Activities: the orchestration's client span, the function's server span under it. `prepare`
    # ran on the first host, before the orchestration span existed anywhere but in history.
    prepare_client = one("activity:prepare", SpanKind.CLIENT, orch)
    prepare_run = one("activity:prepare", SpanKind.SERVER, prepare_client)
    assert prepare_client in before and prepare_run in before
    assert prepare_run.attributes is not None and prepare_run.attributes["durabletask.task.task_id"] == 0
    assert prepare_client.attributes is not None and prepare_client.attributes["durabletask.task.task_id"] == 0
    assert prepare_client.attributes["durabletask.type"] == "activity"
    assert prepare_client.status.status_code != StatusCode.ERROR
    assert SEEN_IN_PREPARE == [prepare_run.context.span_id]  # the function ran with its span current
    finish_client = [
        s
        for s in spans
        if s.name == "activity:finish"
        and s.kind == SpanKind.CLIENT
        and s.parent is not None
        and s.parent.span_id == orch.context.span_id
    ]
    assert len(finish_client) == 1 and finish_client[0] in after
    one("activity:finish", SpanKind.SERVER, finish_client[0])

    # The sub-orchestration: client span in the parent, the child's execution under it, its activity under that.
    child_client = one("orchestration:update_region", SpanKind.CLIENT, orch)
    assert child_client.attributes is not None and child_client.attributes["durabletask.type"] == "orchestration"
    child = one("orchestration:update_region", SpanKind.SERVER, child_client)
    child_activity = one("activity:finish", SpanKind.CLIENT, child)
    one("activity:finish", SpanKind.SERVER, child_activity)

    # The entity call: the orchestration's client span, the operation's server span under it.
    call = one("entity:tally:add", SpanKind.CLIENT, orch)
    assert call.attributes is not None and call.attributes["durabletask.task.operation"] == "call_entity"
    assert call.attributes["durabletask.event.target_instance_id"] == "@tally@fleet"
    op = one("entity:tally:add", SpanKind.SERVER, call)
    assert op.status.status_code == StatusCode.OK

    # Every durable span of the rollout is in the caller's trace and hangs off the tree above.
    durable = [s for s in before + after if ":" in s.name and not s.name.startswith(("POST", "GET"))]
    assert durable and all(s.context.trace_id == CALLER_TRACE for s in durable)
    assert all(s.parent is not None and s.parent.span_id in by_id for s in durable)


_HARNESS_RUN = """
import sys
import azure.durable_functions as df
from devhost import tracing
from devhost.harness import DurableHarness
app = df.DFApp()
@app.orchestration_trigger(context_name="c")
def o(c):
    return (yield c.call_activity("a", 1))
@app.activity_trigger(input_name="v")
def a(v: int) -> int:
    return v + 1
with DurableHarness(app) as h:
    assert h.run_to_completion("o").output == 2
print("active" if tracing.active is not None else "off")
print(sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk") or m == "devhost.otel_spans"))
"""


def _run_harness(env_extra: dict[str, str]) -> list[str]:
    """The harness in a fresh interpreter (tracing is set up once per process), without the
    caller's OTEL_* variables; its two printed lines."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env_extra
    out = subprocess.run([sys.executable, "-c", _HARNESS_RUN], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.slow  # a fresh interpreter
def test_off_by_default_loads_no_tracing_code() -> None:
    """Without an OTLP endpoint nothing is set up and devhost loads no OpenTelemetry SDK code."""
    assert _run_harness({}) == ["off", "[]"]


@pytest.mark.slow  # a fresh interpreter
async def test_otlp_endpoint_receives_the_spans() -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, the spans reach a real OTLP/HTTP receiver on loopback."""
    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(status=200, content_type="application/x-protobuf", body=b"")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        lines = await asyncio.to_thread(
            _run_harness,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_SERVICE_NAME": "rollout-test"},
        )
    finally:
        await runner.cleanup()
    assert lines[0] == "active"
    spans = [(rs, span) for req in received for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans]
    names = sorted(span.name for _, span in spans)
    assert names == ["activity:a", "activity:a", "create_orchestration:o", "orchestration:o"]
    assert {span.trace_id for _, span in spans} == {spans[0][1].trace_id}
    service = {a.key: a.value.string_value for a in spans[0][0].resource.attributes}["service.name"]
    assert service == "rollout-test"
