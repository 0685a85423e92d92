"""devhost's one HTTP layer (devhost.server.http, internals): the inputs issue 12's fuzz answered with a 500,
now a 4xx on every route, and the catch-all that turns a devhost bug into a logged JSON 500 without a traceback.
The seeded fuzzer over every route is tests/app/e2e/test_fuzz.py (it serves the template app)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from devhost.server.http import json_errors, route

from .support import WEBHOOK, running_host, wait_status

DEEP = b"[" * 100_000 + b"]" * 100_000
JSON = {"Content-Type": "application/json"}


async def test_deeply_nested_json_is_a_400_on_every_route_that_reads_json() -> None:
    async with running_host() as (_, session, base):
        async with session.post(f"{base}{WEBHOOK}/orchestrators/wait_for_approval") as resp:
            links = await resp.json()
        iid = links["id"]
        for path in [
            f"{WEBHOOK}/orchestrators/hello_sequence",
            f"{WEBHOOK}/instances/{iid}/raiseEvent/approval",
            f"{WEBHOOK}/entities/counter/k",
            "/admin/functions/tick",
            f"/devhost/api/instances/{iid}/fork",
        ]:
            async with session.post(base + path, data=DEEP, headers=JSON) as resp:
                body = await resp.json()
                assert resp.status == 400, (path, resp.status, body)
                assert "Traceback" not in str(body) and "Recursion" not in str(body), body
        status = await wait_status(session, links["statusQueryGetUri"], {"Running"})
        assert status["runtimeStatus"] == "Running"  # nothing reached the instance


async def test_a_status_filter_repeated_500_times_is_answered() -> None:
    async with running_host() as (_, session, base):
        query = "&".join(["runtimeStatus=Completed"] * 500)
        for path in (f"{WEBHOOK}/instances", "/devhost/api/instances"):
            async with session.get(f"{base}{path}?{query}") as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.json() == []


async def test_static_names_outside_the_dashboard_are_404() -> None:
    async with running_host() as (_, session, base):
        async with session.get(f"{base}/dashboard/static/app.js") as resp:
            assert resp.status == 200 and "javascript" in resp.content_type
        for name in ["x" * 5000, "..%2Froutes.py", "%2e%2e/%2e%2e/server/app.py", "", "nope.js", "static/app.js"]:
            async with session.get(URL(f"{base}/dashboard/static/{name}", encoded=True)) as resp:
                assert resp.status == 404, (name[:50], resp.status)
                assert (await resp.json())["Message"]


async def test_an_unexpected_exception_is_a_logged_json_500_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: web.Request, q: object) -> web.StreamResponse:
        raise RuntimeError("internal detail /secret/path")

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/broken", route(broken))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.ERROR, logger="devhost"):
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/broken") as resp:
                text = await resp.text()
                assert resp.status == 500
                body = await resp.json()
        assert body["Message"] == "Something went wrong while processing your request"
        assert "secret" not in text and "Traceback" not in text
        logged = [r for r in caplog.records if "GET /broken failed" in r.getMessage()]
        assert logged and logged[0].exc_info is not None  # the traceback is in the log, not the answer
    finally:
        await runner.cleanup()
