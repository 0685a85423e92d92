"""The unmodified SDK DurableOrchestrationClient, inside a real HTTP function, against devhost's API.

Each call goes: test client -> /api/sdk/{op} (sample app) -> SDK client -> rpcBaseUrl on the
same server -> DurableHttpApi -> TaskHubClient on a memory store; the dispatcher runs for real.
"""

from __future__ import annotations

import asyncio

from .support import WEBHOOK, running_host, sdk, wait_status


async def _wait_sdk(session, base, iid, statuses, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await sdk(session, base, "get_status", instance_id=iid)
        if status.get("runtimeStatus") in statuses:
            return status
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.02)


async def test_start_new_and_get_status_with_history() -> None:
    async with running_host() as (_, session, base):
        iid = await sdk(session, base, "start_new", name="hello_sequence", input="ann")
        assert len(iid) == 32
        status = await _wait_sdk(session, base, iid, {"Completed"})
        assert status["output"] == ["Hello ann-1", "Hello ann-2", "Hello ann-3"]
        full = await sdk(
            session, base, "get_status", instance_id=iid, history=True, history_output=True, show_input=True
        )
        assert full["input"] == '"ann"'  # a Python-started input comes back as JSON text (protocol §6.3)
        kinds = [e["EventType"] for e in full["historyEvents"]]
        assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
        assert kinds.count("TaskCompleted") == 3
        missing = await sdk(session, base, "get_status", instance_id="nope")
        assert missing == {"exists": False}


async def test_custom_instance_id_status_queries_and_purge() -> None:
    async with running_host() as (_, session, base):
        await sdk(session, base, "start_new", name="hello_sequence", instance_id="order-1", input="a")
        await sdk(session, base, "start_new", name="wait_for_approval", instance_id="order-2")
        await sdk(session, base, "start_new", name="hello_sequence", instance_id="other-1", input="b")
        await _wait_sdk(session, base, "order-1", {"Completed"})
        await _wait_sdk(session, base, "other-1", {"Completed"})
        await _wait_sdk(session, base, "order-2", {"Running"})
        assert sorted(await sdk(session, base, "get_status_all")) == ["order-1", "order-2", "other-1"]
        assert await sdk(session, base, "get_status_by", prefix="order-") == ["order-1", "order-2"]
        assert await sdk(session, base, "get_status_by", runtime_status=["Running"]) == ["order-2"]
        assert await sdk(session, base, "purge", instance_id="order-1") == 1
        assert await sdk(session, base, "purge", instance_id="order-1") == 0  # 404 -> instancesDeleted=0
        assert sorted(await sdk(session, base, "get_status_all")) == ["order-2", "other-1"]


async def test_restart_and_purge_by_filter() -> None:
    async with running_host() as (_, session, base):
        await sdk(session, base, "start_new", name="hello_sequence", instance_id="rs-1", input="r")
        first = await _wait_sdk(session, base, "rs-1", {"Completed"})
        restarted = await sdk(session, base, "restart", instance_id="rs-1")
        # The extension answers with the check-status object, which the SDK returns as is (protocol D5).
        new_id = restarted["id"]
        assert new_id != "rs-1"
        assert (await _wait_sdk(session, base, new_id, {"Completed"}))["output"] == first["output"]
        await sdk(session, base, "start_new", name="wait_for_approval", instance_id="rs-live")
        await _wait_sdk(session, base, "rs-live", {"Running"})
        # The SDK sends no runtimeStatus: Azure purges every instance in the range, the running one too
        # (AzureTableTrackingStore.cs 843 and OrchestrationInstanceStatusQueryCondition.cs 133, DTFx AzureStorage).
        assert await sdk(session, base, "purge_by") == 3
        assert await sdk(session, base, "get_status_all") == []
        assert await sdk(session, base, "purge_by") == 0


async def test_raise_event_suspend_resume() -> None:
    async with running_host() as (_, session, base):
        iid = await sdk(session, base, "start_new", name="wait_for_approval")
        status = await _wait_sdk(session, base, iid, {"Running"})
        assert status["customStatus"] == {"stage": "waiting"}
        await sdk(session, base, "suspend", instance_id=iid)
        await _wait_sdk(session, base, iid, {"Suspended"})
        await sdk(session, base, "resume", instance_id=iid)
        await _wait_sdk(session, base, iid, {"Running"})
        await sdk(session, base, "raise_event", instance_id=iid, event="approve", data={"by": "lead"})
        done = await _wait_sdk(session, base, iid, {"Completed"})
        # The SDK double-encodes event data, so the orchestrator gets JSON text (SDK issue #295).
        assert done["output"] == {"approved": '{"by": "lead"}'}
        assert done["customStatus"] == {"stage": "done"}


async def test_terminate_and_terminate_again() -> None:
    async with running_host() as (_, session, base):
        iid = await sdk(session, base, "start_new", name="wait_for_approval")
        await _wait_sdk(session, base, iid, {"Running"})
        await sdk(session, base, "terminate", instance_id=iid, reason="no longer needed")
        status = await _wait_sdk(session, base, iid, {"Terminated"})
        assert status["output"] == "no longer needed"
        await sdk(session, base, "terminate", instance_id=iid)  # 410 is accepted by the SDK


async def test_raise_event_on_unknown_instance_fails_in_the_sdk() -> None:
    async with running_host() as (_, session, base):
        async with session.post(f"{base}/api/sdk/raise_event", json={"instance_id": "ghost", "event": "x"}) as resp:
            assert resp.status == 500  # the SDK raised for our 404; the function failed, the host kept going
        assert await sdk(session, base, "get_status_all") == []


async def test_entities_signal_and_read() -> None:
    async with running_host() as (_, session, base):
        assert await sdk(session, base, "read_entity", entity="counter", key="k1") == {"exists": False, "state": None}
        await sdk(session, base, "signal_entity", entity="Counter", key="k1", operation="add", input=5)
        await sdk(session, base, "signal_entity", entity="counter", key="k1", operation="add", input=2)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            state = await sdk(session, base, "read_entity", entity="counter", key="k1")
            if state == {"exists": True, "state": 7}:
                break
            assert asyncio.get_running_loop().time() < deadline, state
            await asyncio.sleep(0.02)
        async with session.get(f"{base}{WEBHOOK}/entities/counter?fetchState=true") as resp:
            assert resp.status == 200
            assert await resp.json() == [
                {
                    "entityId": {"name": "counter", "key": "k1"},
                    "lastOperationTime": (await resp.json())[0]["lastOperationTime"],
                    "state": 7,
                }
            ]


async def test_create_check_status_response_uses_the_request_origin() -> None:
    # A host name other than loopback must be allowed (devhost.server.origin_guard: DNS-rebinding protection).
    async with running_host(allowed_hosts=["devbox.example"]) as (host, session, base):
        async with session.post(
            f"{base}/api/orchestrators/hello_sequence", json="zed", headers={"Host": f"devbox.example:{host.port}"}
        ) as resp:
            assert resp.status == 202
            body = await resp.json()
            assert resp.headers["Location"] == body["statusQueryGetUri"]
        assert body["statusQueryGetUri"].startswith(f"http://devbox.example:{host.port}{WEBHOOK}/instances/")
        assert "taskHub=SampleHub&connection=Storage" in body["statusQueryGetUri"]
        assert "rewindPostUri" in body  # the SDK's own payload includes it (§5.5)
        local = body["statusQueryGetUri"].replace(f"devbox.example:{host.port}", f"127.0.0.1:{host.port}")
        status = await wait_status(session, local)
        assert status["output"] == ["Hello zed-1", "Hello zed-2", "Hello zed-3"]


async def test_wait_for_completion_or_create_check_status_response() -> None:
    async with running_host() as (_, session, base):
        async with session.post(f"{base}/api/wait/hello_sequence", json="w") as resp:
            assert resp.status == 200
            assert await resp.json() == ["Hello w-1", "Hello w-2", "Hello w-3"]
        async with session.post(f"{base}/api/wait/fails") as resp:
            assert resp.status == 500
            assert (await resp.json())["runtimeStatus"] == "Failed"


async def test_rewind_runs_a_failed_instance_again() -> None:
    async with running_host() as (_, session, base):
        iid = await sdk(session, base, "start_new", name="fails")
        await _wait_sdk(session, base, iid, {"Failed"})
        async with session.post(f"{base}/api/sdk/rewind", json={"instance_id": iid}) as resp:
            assert resp.status == 200  # the SDK accepted our 202
        # `fails` always raises: rewound, it runs again and fails again
        async with session.get(f"{base}{WEBHOOK}/instances/{iid}?showHistory=true") as resp:
            body = await resp.json()
        deadline = asyncio.get_running_loop().time() + 10
        while body["runtimeStatus"] != "Failed" or not any(
            ev["EventType"] == "GenericEvent" for ev in body.get("historyEvents") or []
        ):
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)
            async with session.get(f"{base}{WEBHOOK}/instances/{iid}?showHistory=true") as resp:
                body = await resp.json()
        assert "orchestrator exploded" in body["output"]
        async with session.post(f"{base}{WEBHOOK}/instances/{iid}/rewind?reason=x") as resp:
            assert resp.status == 202


async def test_context_reaches_the_function_and_the_client() -> None:
    async with running_host() as (_, session, base):
        invocation_id = await sdk(session, base, "invocation_id")
        assert len(invocation_id) == 36
