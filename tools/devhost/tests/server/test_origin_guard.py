"""Cross-site and DNS-rebinding protection on a real devhost on loopback (issue 12 item 4).

A web page in the user's browser can send requests to 127.0.0.1:7071: a cross-site `text/plain` POST
needs no CORS preflight, and a DNS-rebinding page reaches devhost under its own host name. devhost
refuses both (403 JSON) while curl-like clients (no Origin), the SDK's client and the dashboard
(same origin) keep working. Tests of the server internals (devhost.server.origin_guard).
"""

from __future__ import annotations

import json

import pytest

from devhost.server.origin_guard import host_name, is_loopback

from .support import WEBHOOK, running_host, sdk, wait_status

START = WEBHOOK + "/orchestrators/hello_sequence"


async def _instances(session, base) -> list[dict]:
    async with session.get(f"{base}{WEBHOOK}/instances") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_cross_site_state_changes_are_refused_and_change_nothing() -> None:
    async with running_host() as (_, session, base):
        foreign = {"Origin": "http://evil.example"}
        attempts = [
            ("POST", START, {**foreign, "Content-Type": "text/plain"}, '{"name": "x"}'),  # no-preflight form POST
            ("POST", START, {**foreign, "Content-Type": "application/json"}, '{"name": "x"}'),
            ("POST", START, {"Origin": "null"}, None),  # sandboxed iframe / file: page
            ("POST", START, {"Origin": f"http://localhost:{base.rsplit(':', 1)[1]}.evil.example"}, None),
            ("POST", "/api/orchestrators/hello_sequence", foreign, None),  # the app's own HTTP starter
            ("POST", "/admin/functions/tick", foreign, None),
            ("DELETE", WEBHOOK + "/instances?createdTimeFrom=2000-01-01T00:00:00Z", foreign, None),
            ("PUT", "/api/echo/1", foreign, None),
            ("PATCH", "/api/echo/1", foreign, None),
        ]
        for method, path, headers, body in attempts:
            async with session.request(method, base + path, headers=headers, data=body) as resp:
                assert resp.status == 403, (method, path, headers, resp.status, await resp.text())
                payload = await resp.json()
                assert "not allowed" in payload["Message"], payload
        assert await _instances(session, base) == []


async def test_terminate_with_foreign_origin_is_refused_but_same_origin_and_no_origin_work() -> None:
    async with running_host() as (_, session, base):
        async with session.post(base + WEBHOOK + "/orchestrators/wait_for_approval") as resp:
            assert resp.status == 202  # no Origin: curl, scripts, aiohttp
            links = await resp.json()
        async with session.post(
            links["terminatePostUri"].replace("{text}", "x"), headers={"Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 403
        status = await wait_status(session, links["statusQueryGetUri"], {"Running"})
        assert status["runtimeStatus"] == "Running"
        # The dashboard's own requests: Origin is devhost's origin, exactly as the browser sends it.
        async with session.post(links["terminatePostUri"].replace("{text}", "done"), headers={"Origin": base}) as resp:
            assert resp.status == 202, await resp.text()
        status = await wait_status(session, links["statusQueryGetUri"])
        assert status["runtimeStatus"] == "Terminated"


async def test_reads_with_a_foreign_origin_are_served_since_the_browser_keeps_the_answer_from_the_page() -> None:
    async with running_host() as (_, session, base):
        async with session.get(base + WEBHOOK + "/instances", headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_foreign_host_is_refused_on_every_route_and_never_echoed() -> None:
    """DNS rebinding: the page's requests reach 127.0.0.1 but carry the attacker's Host."""
    async with running_host() as (_, session, base):
        for method, path in [
            ("GET", WEBHOOK + "/instances"),
            ("POST", START),
            ("GET", "/dashboard/"),
            ("GET", "/devhost/api/instances"),
            ("GET", "/api/hello"),
            ("GET", "/admin/host/status"),
            ("GET", "/dashboard/static/app.js"),
            ("GET", "/no/such/route"),
        ]:
            async with session.request(method, base + path, headers={"Host": "rebind.evil.example"}) as resp:
                text = await resp.text()
                assert resp.status == 403, (method, path, resp.status, text)
                assert "not allowed" in json.loads(text)["Message"]
        assert await _instances(session, base) == []


async def test_loopback_hosts_and_the_sdk_client_work() -> None:
    async with running_host() as (_, session, base):
        port = base.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"127.8.9.10:{port}", f"[::1]:{port}", "LOCALHOST"):
            async with session.get(base + WEBHOOK + "/instances", headers={"Host": host}) as resp:
                assert resp.status == 200, (host, await resp.text())
        iid = await sdk(session, base, "start_new", name="hello_sequence", input={"name": "sdk"})
        status = await wait_status(session, f"{base}{WEBHOOK}/instances/{iid}")
        assert status["runtimeStatus"] == "Completed"


@pytest.mark.parametrize("settings_hosts, extra", [("devbox.lan, other.lan", ()), ("", ("devbox.lan",))])
async def test_a_configured_host_is_allowed_for_host_and_origin(settings_hosts: str, extra: tuple[str, ...]) -> None:
    from .support import SETTINGS

    settings = {**SETTINGS, "DEVHOST_ALLOWED_HOSTS": settings_hosts}
    async with running_host(settings=settings, allowed_hosts=extra) as (_, session, base):
        port = base.rsplit(":", 1)[1]
        headers = {"Host": f"DevBox.lan:{port}", "Origin": f"http://devbox.lan:{port}"}
        async with session.post(base + START, headers=headers) as resp:
            assert resp.status == 202, await resp.text()
            links = await resp.json()
        assert links["statusQueryGetUri"].lower().startswith(f"http://devbox.lan:{port}/")
        async with session.get(base + WEBHOOK + "/instances", headers={"Host": "stranger.lan"}) as resp:
            assert resp.status == 403


@pytest.mark.parametrize(
    "value, name",
    [
        ("localhost:7071", "localhost"),
        ("[::1]:7071", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("Example.COM.", "example.com"),
        ("[::1", None),
        ("a:b", None),
        ("", None),
        ("[::1]x", None),
    ],
)
def test_host_name_parsing(value: str, name: str | None) -> None:
    assert host_name(value) == name


@pytest.mark.parametrize(
    "name, loopback",
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.0.3", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("128.0.0.1", False),
    ],
)
def test_loopback_names(name: str, loopback: bool) -> None:
    assert is_loopback(name) == loopback
