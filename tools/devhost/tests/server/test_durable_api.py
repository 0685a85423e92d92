"""The Durable HTTP API from a plain HTTP client: routes, status codes, shapes, and bad input."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from .support import WEBHOOK, running_host, wait_status

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


async def _start(session, base, name, instance_id=None, body=None, **kw):
    url = f"{base}{WEBHOOK}/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
    return await session.post(url, data=body, **kw)


async def test_start_returns_202_check_status_and_runs() -> None:
    async with running_host() as (_, session, base):
        resp = await _start(session, base, "hello_sequence", body=json.dumps({"name": "raw"}), headers=JSON)
        assert resp.status == 202
        body = await resp.json()
        assert resp.headers["Location"] == body["statusQueryGetUri"]
        assert resp.headers["Retry-After"] == "10"
        assert list(body) == [
            "id",
            "statusQueryGetUri",
            "sendEventPostUri",
            "terminatePostUri",
            "purgeHistoryDeleteUri",
            "restartPostUri",
            "suspendPostUri",
            "resumePostUri",
        ]
        status = await wait_status(session, body["statusQueryGetUri"])
        assert status["runtimeStatus"] == "Completed"
        assert status["input"] == {"name": "raw"}
        assert status["output"] == ["Hello raw-1", "Hello raw-2", "Hello raw-3"]
        assert set(status) == {
            "name",
            "instanceId",
            "runtimeStatus",
            "input",
            "customStatus",
            "output",
            "createdTime",
            "lastUpdatedTime",
        }
        assert status["createdTime"].endswith("Z") and len(status["createdTime"]) == 20


async def test_start_errors_are_json_4xx() -> None:
    async with running_host() as (_, session, base):
        cases = [
            ("nope", None, None, 400),  # unknown orchestrator
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
        # Unparsable booleans are ignored, as bool.TryParse makes them (HttpApiHandler.cs 596, 753).
        resp = await session.get(f"{base}{WEBHOOK}/instances/w1?showHistory=maybe&showInput=0")
        assert resp.status == 202
        body = await resp.json()
        assert "historyEvents" not in body and body["input"] == "in"
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
            headers: dict[str, str] = {"x-ms-continuation-token": token} if token else {}
            resp = await session.get(f"{base}{WEBHOOK}/instances?top=2&instanceIdPrefix=batch-", headers=headers)
            assert resp.status == 200
            seen += [s["instanceId"] for s in await resp.json()]
            pages += 1
            token = resp.headers.get("x-ms-continuation-token")
            if not token:
                break
        assert sorted(seen) == [f"batch-{i}" for i in range(5)] and pages == 3
        # Status names as Enum.TryParse reads them (HttpApiHandler.cs 719): exact names or numbers, each value
        # of a repeated parameter split at commas; what does not parse is skipped.
        resp = await session.get(f"{base}{WEBHOOK}/instances/?RuntimeStatus=Running,Bogus")
        assert [s["instanceId"] for s in await resp.json()] == ["waiting-1"]
        resp = await session.get(f"{base}{WEBHOOK}/instances?runtimeStatus=Bogus&runtimeStatus=0")  # 0 = Running
        assert [s["instanceId"] for s in await resp.json()] == ["waiting-1"]
        resp = await session.get(f"{base}{WEBHOOK}/instances?runtimeStatus=running")  # no status: no filter
        assert len(await resp.json()) == 6
        resp = await session.get(f"{base}{WEBHOOK}/instances?createdTimeFrom=2999-01-01T00:00:00Z")
        assert await resp.json() == []
        # Values that do not parse are ignored (TryGet*QueryParameterValue, HttpApiHandler.cs 719-783).
        for ignored in ("top=0", "top=x", "createdTimeFrom=yesterday", "showInput=maybe"):
            resp = await session.get(f"{base}{WEBHOOK}/instances?{ignored}")
            assert resp.status == 200 and len(await resp.json()) == 6, ignored
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
        # A status list holding only unfinished statuses is emptied (AzureTableTrackingStore.cs 843, DTFx
        # AzureStorage v1.17.5), and an empty list is no filter at all (OrchestrationInstanceStatusQueryCondition.cs
        # 133): `runtimeStatus=Running` purges every instance in the range, like no `runtimeStatus`.
        resp = await session.delete(
            f"{base}{WEBHOOK}/instances/?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Completed"
        )
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 2}
        assert (await session.get(f"{base}{WEBHOOK}/instances/p-running")).status == 202
        resp = await session.delete(
            f"{base}{WEBHOOK}/instances/?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Running"
        )
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 1}
        assert (await session.get(f"{base}{WEBHOOK}/instances/p-running")).status == 404
        resp = await session.delete(f"{base}{WEBHOOK}/instances/?createdTimeFrom=2000-01-01T00:00:00Z")
        assert resp.status == 404


async def test_purge_without_status_purges_running_instances_and_entities_in_the_range() -> None:
    """C4: the SDK's purge_instance_history_by sends no status; on Azure that deletes running work too."""
    async with running_host() as (_, session, base):
        await _start(session, base, "hello_sequence", "q-done")
        await _start(session, base, "wait_for_approval", "q-running")
        assert (await session.post(f"{base}{WEBHOOK}/entities/counter/q?op=add", json="1")).status == 202
        await wait_status(session, f"{base}{WEBHOOK}/instances/q-done")
        await wait_status(session, f"{base}{WEBHOOK}/instances/q-running", {"Running"})
        await _wait_entity(session, f"{base}{WEBHOOK}/entities/counter/q", 1)
        resp = await session.delete(f"{base}{WEBHOOK}/instances?createdTimeFrom=2000-01-01T00:00:00Z")
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 3}
        for path in ("instances/q-done", "instances/q-running", "entities/counter/q"):
            assert (await session.get(f"{base}{WEBHOOK}/{path}")).status == 404, path


async def test_purge_by_id_purges_a_running_instance() -> None:
    """C3: HttpApiHandler.cs 554 answers 404 only when there is no instance; the Azure Storage provider purges
    whatever the status (AzureTableTrackingStore.PurgeInstanceHistoryAsync(instanceId), 801)."""
    async with running_host() as (_, session, base):
        await _start(session, base, "wait_for_approval", "run-1")
        await wait_status(session, f"{base}{WEBHOOK}/instances/run-1", {"Running"})
        resp = await session.delete(f"{base}{WEBHOOK}/instances/run-1")
        assert resp.status == 200 and await resp.json() == {"instancesDeleted": 1}
        assert (await session.get(f"{base}{WEBHOOK}/instances/run-1")).status == 404
        assert (await session.post(f"{base}{WEBHOOK}/instances/run-1/raiseEvent/approve", json=True)).status == 404


async def test_list_shows_inputs_and_entity_instances_by_default() -> None:
    """C1: OrchestrationStatusQueryCondition.ShowInput defaults to true (OrchestrationStatusQueryCondition.cs 79);
    C2: the Azure Storage provider lists entity instances too (AzureStorageDurabilityProvider.cs 212 sets no
    entity filter), as `@name@key`, Running."""
    async with running_host() as (_, session, base):
        await _start(session, base, "wait_for_approval", "in-1", body='{"x": 1}', headers=JSON)
        await wait_status(session, f"{base}{WEBHOOK}/instances/in-1", {"Running"})
        assert (await session.post(f"{base}{WEBHOOK}/entities/counter/k?op=add", json="2")).status == 202
        await _wait_entity(session, f"{base}{WEBHOOK}/entities/counter/k", 2)
        resp = await session.get(f"{base}{WEBHOOK}/instances")
        assert resp.headers["x-ms-continuation-token"] == ""  # always there (HttpApiHandler.cs 508)
        listed = {s["instanceId"]: s for s in await resp.json()}
        assert listed["in-1"]["input"] == {"x": 1}
        assert listed["@counter@k"]["runtimeStatus"] == "Running"
        resp = await session.get(f"{base}{WEBHOOK}/instances?showInput=false")
        assert {s["instanceId"]: s["input"] for s in await resp.json()}["in-1"] is None
        # The dashboard's own list (devhost route) stays orchestrations only; entities have their own tab.
        resp = await session.get(f"{base}/devhost/api/instances")
        assert [s["instanceId"] for s in await resp.json()] == ["in-1"]


async def _wait_entity(session, url: str, state: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await session.get(url)
        if resp.status == 200 and await resp.json() == state:
            return
        assert asyncio.get_running_loop().time() < deadline, (url, resp.status)
        await asyncio.sleep(0.02)


async def test_raise_event_terminate_suspend_resume_status_codes() -> None:
    async with running_host() as (_, session, base):
        api = f"{base}{WEBHOOK}/instances"
        assert (await session.post(f"{api}/ghost/raiseEvent/approve", json=True)).status == 404
        assert (await session.post(f"{api}/ghost/terminate")).status == 404
        await _start(session, base, "wait_for_approval", "e1")
        await wait_status(session, f"{api}/e1", {"Running"})
        # HandleRaiseEventRequestAsync (HttpApiHandler.cs 1001-1015): JSON content or a 400.
        resp = await session.post(f"{api}/e1/raiseEvent/approve", data="true", headers=TEXT)
        assert resp.status == 400
        assert (await resp.json())["Message"] == "Only application/json request content is supported"
        resp = await session.post(f"{api}/e1/raiseEvent/approve")  # no content at all
        assert resp.status == 400
        assert (await resp.json())["Message"] == "Only application/json request content is supported"
        resp = await session.post(f"{api}/e1/raiseEvent/approve", data="", headers=JSON)  # empty JSON: no token
        assert resp.status == 400 and (await resp.json())["Message"] == "Invalid JSON content"
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
        resp = await session.post(
            f"{base}{WEBHOOK}/orchestrators/hello_sequence?timeout=5&pollingInterval=0.05", json=json.dumps("q")
        )
        assert resp.status == 200 and await resp.json() == ["Hello q-1", "Hello q-2", "Hello q-3"]
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/wait_for_approval?timeout=0.2&pollingInterval=0.05")
        assert resp.status == 202
        # pollingInterval > timeout: ArgumentException (HttpApiHandler.cs 204), a 400 (HttpApiHandler.cs 452).
        resp = await session.post(f"{base}{WEBHOOK}/orchestrators/wait_for_approval?timeout=1&pollingInterval=2")
        assert resp.status == 400 and "timeout" in (await resp.json())["Message"]
        resp = await session.post(
            f"{base}{WEBHOOK}/orchestrators/hello_sequence?timeout=5&pollingInterval=0.05", json="bare"
        )  # a bare JSON string: the SDK's get_input() fails on it
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
        # EntityStatus always has `state` (null without fetchState) and a full-precision time.
        resp = await session.get(f"{api}/counter")
        assert resp.headers["x-ms-continuation-token"] == ""
        items = await resp.json()
        assert items and all(e["state"] is None for e in items)
        assert all("." in e["lastOperationTime"] or e["lastOperationTime"].endswith(":00Z") for e in items)
        # No key: EntityId(name, null) throws ArgumentNullException (EntityId.cs 29), a 400 (HttpApiHandler.cs 343).
        resp = await session.post(f"{api}/counter?op=add", json="1")
        assert resp.status == 400 and "key" in (await resp.json())["Message"]
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


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"3", "application/json"),  # a number
        (b'{"n": 3}', "application/json"),  # an object
        (b'"3"', "application/json"),  # a JSON string: fine, the SDK's own client sends this
        (b"3", "text/plain"),  # text: the input is the string "3", also fine
    ],
)
async def test_raw_signal_input_is_encoded_once_as_azure_does_and_failures_are_logged(
    body: bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    """B2: HandlePostEntityOperationRequestAsync passes a JSON body through ConvertToJToken (HttpApiHandler.cs
    1077), so a non-string JSON value reaches the SDK encoded once and its `get_input` fails; a JSON string or
    text is what the SDK expects. A failed operation is logged with its reason, as the extension traces
    OperationFailed for every failed operation, signals included (TaskEntityShim.cs 651)."""
    succeeds = content_type == "text/plain" or body.startswith(b'"')
    async with running_host() as (_, session, base):
        api = f"{base}{WEBHOOK}/entities/counter"
        assert (await session.post(f"{api}/b2?op=reset")).status == 202
        await _wait_entity(session, f"{api}/b2", 0)
        with caplog.at_level(logging.ERROR, logger="devhost"):
            resp = await session.post(f"{api}/b2?op=add", data=body, headers={"Content-Type": content_type})
            assert resp.status == 202
            assert (await session.post(f"{api}/b2?op=add", json="10")).status == 202  # a marker after it
            await _wait_entity(session, f"{api}/b2", 13 if succeeds else 10)
        failed = [r.getMessage() for r in caplog.records if "failed 'add' operation" in r.getMessage()]
        if succeeds:
            assert failed == []
        else:
            assert len(failed) == 1 and "@counter@b2" in failed[0], failed
