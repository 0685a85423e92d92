"""`call_http` from an orchestrator: one real request to a loopback server, the response back."""

from __future__ import annotations

import json

import azure.durable_functions as df
from aiohttp import web

from devhost import DurableHarness, EventType, RuntimeStatus

app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def fetch(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    url = ctx.get_input()
    response = yield ctx.call_http("POST", url, content={"ask": "status"}, headers={"x-trace": "t1"})
    return {"status": response["statusCode"], "body": json.loads(response["content"])}


async def test_call_http_reaches_the_server_and_returns_its_response() -> None:
    seen: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append({"body": await request.json(), "trace": request.headers.get("x-trace")})
        return web.json_response({"ok": True}, status=201)

    server = web.Application()
    server.router.add_post("/target", handler)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    harness = DurableHarness(app)
    try:
        iid = await harness.astart("fetch", f"http://127.0.0.1:{port}/target")
        status = await harness.arun(iid)
    finally:
        harness.dispatcher.close()
        await runner.cleanup()
    assert status is not None and status.runtime_status == RuntimeStatus.COMPLETED, status
    assert status.output == {"status": 201, "body": {"ok": True}}
    assert seen == [{"body": {"ask": "status"}, "trace": "t1"}]
    scheduled = [ev for ev in status.history if ev["EventType"] == EventType.TASK_SCHEDULED]
    assert [ev["Name"] for ev in scheduled] == ["BuiltIn::HttpActivity"]
