"""The Durable HTTP API from a plain HTTP client: routes, status codes, shapes, and bad input."""

from __future__ import annotations

import asyncio
import json

import pytest

from .support import WEBHOOK, running_host, wait_status

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


async def _start(session, base, name, instance_id=None, body=None, **kw):
    url = f"{base}{WEBHOOK}/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
    return await session.post(url, data=body, **kw)


async def test_start_returns_202_check_status_and_runs() -> None:
    async with running_host() as (_, session, base):
        resp = await _start(session, base, "hello_sequence", body=json.dumps({"name": "raw"}),
                            headers=JSON)
        assert resp.status == 202
        body = await resp.json()
        assert resp.headers["Location"] == body["statusQueryGetUri"]
        assert resp.headers["Retry-After"] == "10"
        assert list(body) == ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                              "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"]
        status = await wait_status(session, body["statusQueryGetUri"])
        assert status["runtimeStatus"] == "Completed"
        assert status["input"] == {"name": "raw"}
        assert status["output"] == ["Hello raw-1", "Hello raw-2", "Hello raw-3"]
        assert set(status) == {"name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                               "createdTime", "lastUpdatedTime"}
        assert status["createdTime"].endswith("Z") and len(status["createdTime"]) == 20


async def test_start_errors_are_json_4xx() -> None:
    async with running_host() as (_, session, base):
        cases = [
            ("nope", None, None, 400),               # unknown orchestrator
            ("hello_sequence", "a%2Fb", None, 400),  # '/' in the id
            ("hello_sequence", "a%5Cb", None, 400),  # '\'
            ("hello_sequence", "a%23b", None, 400),  # '#'
            ("hello_sequence", "a%3Fb", None, 400),  # '?'
            ("hello_sequence", "a%01b", None, 400),  # control character
            ("hello_sequence", "@entity", None, 400),
            ("hello_sequence", "x" * 300, None, 400),
            ("hello_sequence", "a/b", None, 400),
            ("hello_sequence", None, "{not json", 400),
        ]
        for name, iid, body, status in cases:
            resp = await _start(session, base, name, iid, body)
            assert resp.status == status, (name, iid, body, resp.status, await resp.text())
            payload = await resp.json()
            assert payload["Message"] and payload["ExceptionMessage"], payload


async def test_start_an_active_id_conflicts_and_a_finished_one_restarts() -> None:
    async with running_host() as (_, session, base):
        assert (await _start(session, base, "wait_for_approval", "dup")).status == 202
        resp = await _start(session, base, "wait_for_approval", "dup")
        assert resp.status == 409
        assert "already exists" in (await resp.json())["Message"]
        assert (await session.post(f"{base}{WEBHOOK}/instances/dup/terminate")).status == 202
        await wait_status(session, f"{base}{WEBHOOK}/instances/dup")
        assert (await _start(session, base, "wait_for_approval", "dup")).status == 202


async def test_get_instance_status_codes_and_options() -> None:
    async with running_host() as (_, session, base):
        resp = await session.get(f"{base}{WEBHOOK}/instances/unknown")
        assert resp.status == 404
        assert "unknown" in (await resp.json())["Message"]
        await _start(session, base, "wait_for_approval", "w1", body='"in"', headers=JSON)
        running = await wait_status(session, f"{base}{WEBHOOK}/instances/w1", {"Running"})
        assert running["input"] == "in"
        resp = await session.get(f"{base}{WEBHOOK}/instances/w1?SHOWINPUT=False&ShowHistory=TRUE")
        assert resp.status == 202
        assert resp.headers["Retry-After"] == "5"
        assert resp.headers["Location"].endswith("/instances/w1?SHOWINPUT=False&ShowHistory=TRUE")
        body = await resp.json()
        assert body["input"] is None and body["historyEvents"][0]["EventType"] == "ExecutionStarted"
        resp = await session.get(f"{base}{WEBHOOK}/instances/w1?showHistory=maybe")
        assert resp.status == 400
        await _start(session, base, "fails", "f1")
        failed = await wait_status(session, f"{base}{WEBHOOK}/instances/f1")
        assert failed["runtimeStatus"] == "Failed" and "orchestrator exploded" in failed["output"]
        assert (await session.get(f"{base}{WEBHOOK}/instances/f1")).status == 200
        resp = await session.get(f"{base}{WEBHOOK}/instances/f1?returnInternalServerErrorOnFailure=true")
        assert resp.status == 500


async def test_list_instances_filters_and_paging() -> None:
    async with running_host() as (_, session, base):
        for i in range(5):
            await _start(session, base, "hello_sequence", f"batch-{i}")
        await _start(session, base, "wait_for_approval", "waiting-1")
        for i in range(5):
            await wait_status(session, f"{base}{WEBHOOK}/instances/batch-{i}")
        await wait_status(session, f"{base}{WEBHOOK}/instances/waiting-1", {"Running"})
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            headers = {"x-ms-continuation-token": token} if token else {}
            resp = await session.get(f"{base}{WEBHOOK}/instances?top=2&instanceIdPrefix=batch-", headers=headers)
            assert resp.status == 200
            seen += [s["instanceId"] for s in await resp.json()]
            pages += 1
            token = resp.headers.get("x-ms-continuation-token")
            if not token:
                break
        assert sorted(seen) == [f"batch-{i}" for i in range(5)] and pages == 3
        resp = await session.get(f"{base}{WEBHOOK}/instances/?RuntimeStatus=running,Bogus")
        assert [s["instanceId"] for s in await resp.json()] == ["waiting-1"]
        resp = await session.get(f"{base}{WEBHOOK}/instances?createdTimeFrom=2999-01-01T00:00:00Z")
        assert await resp.json() == []
        for bad in ("top=0", "top=x", "createdTimeFrom=yesterday"):
            resp = await session.get(f"{base}{WEBHOOK}/instances?{bad}")
            assert resp.status == 400, bad
        resp = await session.get(f"{base}{WEBHOOK}/instances", headers={"x-ms-continuation-token": "garbage"})
        assert resp.status == 400


async def test_purge_single_and_by_filter() -> None:
    async with running_host() as (_, session, base):
        for i in range(3):
            await _start(session, base, "hello_sequence", f"p-{i}")
        await _start(session, base, "wait_for_approval", "p-running")
        for i in range(3):
            await wait_status(session, f"{base}{WEBHOOK}/instances/p-{i}")
        resp = await session.delete(f"{base}{WEBHOOK}/instances/p-0")
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 1}
        assert (await session.delete(f"{base}{WEBHOOK}/instances/p-0")).status == 404
        resp = await session.delete(f"{base}{WEBHOOK}/instances")
        assert resp.status == 400 and "createdTimeFrom" in (await resp.json())["Message"]
        resp = await session.delete(f"{base}{WEBHOOK}/instances/?createdTimeFrom=2000-01-01T00:00:00Z")
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 2}  # the running one stays
        resp = await session.delete(f"{base}{WEBHOOK}/instances/?createdTimeFrom=2000-01-01T00:00:00Z")
        assert resp.status == 404
        assert (await session.get(f"{base}{WEBHOOK}/instances/p-running")).status == 202


async def test_raise_event_terminate_suspend_resume_status_codes() -> None:
    async with running_host() as (_, session, base):
        api = f"{base}{WEBHOOK}/instances"
        assert (await session.post(f"{api}/ghost/raiseEvent/approve", json=True)).status == 404
        assert (await session.post(f"{api}/ghost/terminate")).status == 404
        await _start(session, base, "wait_for_approval", "e1")
        await wait_status(session, f"{api}/e1", {"Running"})
        resp = await session.post(f"{api}/e1/raiseEvent/approve", data="true", headers=TEXT)
        assert resp.status == 400
        resp = await session.post(f"{api}/e1/raiseEvent/approve", data="{bad", headers=JSON)
        assert resp.status == 400
        assert (await session.post(f"{api}/e1/resume")).status == 409  # not suspended
        assert (await session.post(f"{api}/e1/suspend?reason=hold")).status == 202
        await wait_status(session, f"{api}/e1", {"Suspended"})
        assert (await session.post(f"{api}/e1/suspend")).status == 409
        assert (await session.post(f"{api}/e1/resume?reason=go")).status == 202
        await wait_status(session, f"{api}/e1", {"Running"})
        resp = await session.post(f"{api}/e1/raiseEvent/approve", json={"ok": 1})
        assert resp.status == 202 and await resp.read() == b""
        done = await wait_status(session, f"{api}/e1")
        assert done["output"] == {"approved": {"ok": 1}}
        assert (await session.post(f"{api}/e1/raiseEvent/approve", json=1)).status == 410
        assert (await session.post(f"{api}/e1/terminate")).status == 410
        assert (await session.post(f"{api}/e1/suspend")).status == 410
        assert (await session.post(f"{api}/e1/rewind")).status == 410


async def test_restart_with_new_and_same_id() -> None:
    async with running_host() as (_, session, base):
        api = f"{base}{WEBHOOK}/instances"
        await _start(session, base, "hello_sequence", "r1", body=json.dumps(json.dumps("again")), headers=JSON)
        first = await wait_status(session, f"{api}/r1")
        assert first["runtimeStatus"] == "Completed", first
        resp = await session.post(f"{api}/r1/restart")
        assert resp.status == 202
        new_id = (await resp.json())["id"]
        assert new_id != "r1"
        second = await wait_status(session, f"{api}/{new_id}")
        assert second["output"] == first["output"] and second["input"] == '"again"'
        resp = await session.post(f"{api}/r1/restart?restartWithNewInstanceId=false")
        assert resp.status == 202 and (await resp.json())["id"] == "r1"
        assert (await session.post(f"{api}/ghost/restart")).status == 400
        await wait_status(session, f"{api}/r1")
        resp = await session.post(f"{api}/r1/restart?restartWithNewInstanceId=false&timeout=5&pollingInterval=0.05")
        assert resp.status == 200 and await resp.json() == first["output"]
        await _start(session, base, "wait_for_approval", "r2")
        await wait_status(session, f"{api}/r2", {"Running"})
        assert (await session.post(f"{api}/r2/restart?restartWithNewInstanceId=false")).status == 409


async def test_start_and_wait_with_timeout_query() -> None:
    async with running_host() as (_, session, base):
        # A Python orchestrator needs JSON text inside a JSON string (protocol §6.2), like the SDK sends.
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/hello_sequence?timeout=5&pollingInterval=0.05",
                                  json=json.dumps("q"))
        assert resp.status == 200 and await resp.json() == ["Hello q-1", "Hello q-2", "Hello q-3"]
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/wait_for_approval?timeout=0.2&pollingInterval=0.05")
        assert resp.status == 202
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/hello_sequence?timeout=5&pollingInterval=0.05",
                                  json="bare")  # a bare JSON string: the SDK's get_input() fails on it
        assert resp.status == 200 and (await resp.json())["runtimeStatus"] == "Failed"


async def test_entities_over_http() -> None:
    async with running_host() as (_, session, base):
        api = f"{base}{WEBHOOK}/entities"
        assert (await session.get(f"{api}/counter/c1")).status == 404
        # A raw client must send JSON text inside a JSON string for a Python entity (protocol §6.2).
        assert (await session.post(f"{api}/counter/c1?op=add", json="3")).status == 202
        assert (await session.post(f"{api}/Counter/c1?OP=add", data="4", headers=TEXT)).status == 202
        assert (await session.post(f"{api}/counter/%24?op=add", json="1")).status == 202  # '$' is the empty key
        assert (await session.post(f"{api}/nosuch/c1?op=add")).status == 400
        assert (await session.post(f"{api}/counter/c1?op=add", data="{x", headers=JSON)).status == 400
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            resp = await session.get(f"{api}/counter/c1")
            if resp.status == 200 and await resp.json() == 7:
                break
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        resp = await session.get(f"{api}?fetchState=TRUE")
        listed = {(e["entityId"]["key"], e.get("state")) for e in await resp.json()}
        assert ("c1", 7) in listed
        resp = await session.get(f"{api}/counter")
        assert all("state" not in e for e in await resp.json())
        assert (await session.delete(f"{api}/counter/c1")).status == 202
        deadline = asyncio.get_running_loop().time() + 10
        while (await session.get(f"{api}/counter/c1")).status != 404:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)


async def test_unknown_routes_other_hubs_and_oversized_bodies() -> None:
    async with running_host(max_request_bytes=1024) as (_, session, base):
        for method, path in (("GET", "/nothing/here"), ("PUT", "/instances/x"), ("GET", "/orchestrators/x")):
            resp = await session.request(method, f"{base}{WEBHOOK}{path}")
            assert resp.status == 404, path
            assert "Message" in await resp.json()
        resp = await session.get(f"{base}{WEBHOOK}/instances?taskHub=OtherHub")
        assert resp.status == 400
        assert (await session.get(f"{base}{WEBHOOK}/instances?taskhub=samplehub")).status == 200
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/hello_sequence", data=b'"' + b"x" * 4096 + b'"')
        assert resp.status == 413
        assert "limit" in (await resp.json())["Message"]
        resp = await session.post(f"{base}/api/echo/1", data=b"x" * 4096)
        assert resp.status == 413


@pytest.mark.parametrize("path", ["/instances/%00", "/instances/a%0Ab/terminate", "/entities/counter/a%2Fb"])
async def test_odd_ids_never_give_5xx(path: str) -> None:
    async with running_host() as (_, session, base):
        for method in ("GET", "POST", "DELETE"):
            resp = await session.request(method, f"{base}{WEBHOOK}{path}")
            assert 400 <= resp.status < 500, (method, path, resp.status)
