"""HTTP-trigger functions through the server: request/response mapping, routes, errors, bindings.

Tests internals (not devhost's public API): imports `devhost.server.binding`.
"""

from __future__ import annotations

import json

import azure.durable_functions as df

from devhost.server.binding import client_binding_json

from .support import running_host


async def test_sync_function_gets_a_real_request_and_its_response_is_sent() -> None:
    async with running_host() as (_, session, base):
        resp = await session.post(f"{base}/api/echo/42?a=1&b=two", json={"k": [1, 2]}, headers={"X-Test": "hdr"})
        assert resp.status == 201
        assert resp.headers["X-Echo"] == "yes"
        assert resp.headers["Content-Type"] == "application/json"
        body = await resp.json()
        assert body["method"] == "POST" and body["id"] == "42"
        assert body["params"] == {"a": "1", "b": "two"} and body["header"] == "hdr"
        assert body["json"] == {"k": [1, 2]}
        assert body["url"] == f"{base}/api/echo/42?a=1&b=two"


async def test_routes_constraints_methods_and_prefix() -> None:
    async with running_host() as (_, session, base):
        assert (await session.get(f"{base}/api/echo/abc")).status == 404  # {id:int}
        assert (await session.delete(f"{base}/api/echo/1")).status == 404  # methods GET, POST only
        assert (await session.get(f"{base}/API/Echo/1")).status == 201  # case-insensitive, like ASP.NET
        assert (await session.get(f"{base}/echo/1")).status == 404  # outside the prefix
        resp = await session.get(f"{base}/api/hello")
        assert resp.status == 200 and await resp.text() == "hello text"
        assert resp.headers["Content-Type"].startswith("text/plain")


async def test_empty_route_prefix() -> None:
    async with running_host(route_prefix="") as (_, session, base):
        assert (await session.get(f"{base}/hello")).status == 200
        assert (await session.get(f"{base}/runtime/webhooks/durabletask/instances")).status == 200


async def test_exceptions_and_bad_returns_are_500_json_and_the_host_keeps_serving() -> None:
    async with running_host() as (_, session, base):
        resp = await session.get(f"{base}/api/boom")
        assert resp.status == 500
        body = await resp.json()
        assert body["ExceptionMessage"] == "kaboom" and "boom" in body["Message"]
        resp = await session.get(f"{base}/api/bad-return")
        assert resp.status == 500 and "func.HttpResponse" in (await resp.json())["ExceptionMessage"]
        assert (await session.get(f"{base}/api/hello")).status == 200


async def test_optional_route_parameter() -> None:
    async with running_host() as (_, session, base):
        resp = await session.post(f"{base}/api/orchestrators/hello_sequence/my-id", json="x")
        assert resp.status == 202 and (await resp.json())["id"] == "my-id"
        resp = await session.post(f"{base}/api/orchestrators/hello_sequence", json="x")
        assert resp.status == 202 and len((await resp.json())["id"]) == 32


async def test_admin_host_status_and_home() -> None:
    async with running_host() as (_, session, base):
        resp = await session.get(f"{base}/admin/host/status")
        assert resp.status == 200 and (await resp.json())["state"] == "Running"
        assert (await session.get(f"{base}/")).status == 200
        resp = await session.get(f"{base}/not-a-route")
        assert resp.status == 404


def test_binding_json_is_what_the_sdk_client_needs() -> None:
    text = client_binding_json(
        origin="http://myhost:8080", rpc_base_url="http://127.0.0.1:7071/runtime/webhooks/durabletask", hub="Hub1"
    )
    data = json.loads(text)
    assert data["rpcBaseUrl"] == "http://127.0.0.1:7071/runtime/webhooks/durabletask/"
    assert data["managementUrls"]["statusQueryGetUri"] == (
        "http://myhost:8080/runtime/webhooks/durabletask/instances/INSTANCEID?taskHub=Hub1&connection=Storage"
    )
    client = df.DurableOrchestrationClient(text)
    payload = client.create_http_management_payload("abc")
    assert payload["id"] == "abc"
    assert payload["terminatePostUri"].startswith("http://myhost:8080/runtime/webhooks/durabletask/instances/abc/")
