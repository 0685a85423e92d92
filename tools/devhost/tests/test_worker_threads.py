"""User code runs where the Python worker runs it: sync functions on a thread pool, async ones on
the event loop (azure-functions-python-worker `azure_functions_worker/dispatcher.py` 664-674 at
7e6acf3: `if fi.is_async: await self._run_async_func(...)` else `await self._loop.run_in_executor(
self._sync_call_tp, self._run_sync_func, ...)`; the pool is a `ThreadPoolExecutor`, 983-992).

Orchestrators and entities are always sync to the worker: the SDK registers a sync handler that
drives the user's generator / entity function. So orchestrator code sees no running event loop and
may start its own (openai-agents' `Runner.run_sync` does, through the SDK's `ensure_event_loop`),
may block without stalling devhost, and one instance still runs one episode at a time.

Tests internals (not devhost's public API): imports `devhost.index`, `devhost.server.app`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections import Counter
from typing import Any

import azure.durable_functions as df
import pytest

from devhost import DurableHarness
from devhost.index import AppIndex

app = df.DFApp()


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def _no_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


@app.orchestration_trigger(context_name="context")
def runs_its_own_loop(context: df.DurableOrchestrationContext) -> Any:
    # What Runner.run_sync does inside durable_openai_agent_orchestrator: a fresh loop for the thread
    # (azure/durable_functions/openai_agents/event_loop.py ensure_event_loop), then run_until_complete.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    doubled = asyncio.get_event_loop().run_until_complete(_double(context.get_input()))
    from_activity = yield context.call_activity("sync_activity_with_loop", doubled)
    from_entity = yield context.call_entity(df.EntityId("loop_counter", "k"), "add", from_activity)
    return {
        "orchestrator": doubled,
        "activity": from_activity,
        "entity": from_entity,
        "orchestrator_saw_no_running_loop": _no_running_loop(),
        "orchestrator_thread_is_main": threading.current_thread() is threading.main_thread(),
    }


@app.activity_trigger(input_name="x")
def sync_activity_with_loop(x: int) -> int:
    return asyncio.run(_double(x)) if _no_running_loop() else -1


@app.activity_trigger(input_name="x")
async def async_activity(x: int) -> dict[str, Any]:
    # Async functions run on the host's loop, as the worker runs them on its own.
    return {"value": x + 1, "on_a_running_loop": not _no_running_loop()}


@app.entity_trigger(context_name="context")
def loop_counter(context: df.DurableEntityContext) -> None:
    added = asyncio.run(_double(context.get_input()))  # fails on a thread that runs a loop
    total = context.get_state(lambda: 0) + added
    context.set_state(total)
    context.set_result(total)


def test_sync_user_code_may_run_its_own_event_loop() -> None:
    with DurableHarness(app) as durable:
        status = durable.run_to_completion("runs_its_own_loop", 5)
    assert status.runtime_status.value == "Completed", status.output
    assert status.output == {
        "orchestrator": 10,
        "activity": 20,
        "entity": 40,
        "orchestrator_saw_no_running_loop": True,
        "orchestrator_thread_is_main": False,
    }


@app.orchestration_trigger(context_name="context")
def calls_async_activity(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("async_activity", 1))


def test_async_activity_runs_on_the_loop() -> None:
    with DurableHarness(app) as durable:
        status = durable.run_to_completion("calls_async_activity")
    assert status.output == {"value": 2, "on_a_running_loop": True}


RELEASE = threading.Event()
ENTERED = threading.Event()


@app.orchestration_trigger(context_name="context")
def blocks_until_released(context: df.DurableOrchestrationContext) -> Any:
    if not context.is_replaying:
        ENTERED.set()
        RELEASE.wait(timeout=60)  # sync user code that blocks its thread
    return (yield context.call_activity("sync_activity_with_loop", 1))


@app.orchestration_trigger(context_name="context")
def quick(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("sync_activity_with_loop", 3))


async def _until_done(durable: DurableHarness, iid: str, seconds: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        status = await durable.astatus(iid)
        if status.is_done:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"{iid} did not finish: {(await durable.astatus(iid)).runtime_status}")


async def test_blocking_orchestrator_code_does_not_stall_the_host() -> None:
    """While one orchestrator blocks its worker thread, other instances start and complete."""
    RELEASE.clear()
    ENTERED.clear()
    durable = DurableHarness(app)
    stop = asyncio.Event()
    serving = asyncio.ensure_future(durable.dispatcher.run(stop))  # as `devhost start` runs it
    try:
        blocked = await durable.astart("blocks_until_released")
        assert await asyncio.get_running_loop().run_in_executor(None, ENTERED.wait, 30)
        other = await durable.astart("quick")
        assert (await _until_done(durable, other)).output == 6
        assert not (await durable.astatus(blocked)).is_done
        RELEASE.set()
        assert (await _until_done(durable, blocked)).output == 2
    finally:
        RELEASE.set()
        stop.set()
        await asyncio.wait_for(serving, timeout=30)
        durable.dispatcher.close()


@app.orchestration_trigger(context_name="context")
def waits_for_many(context: df.DurableOrchestrationContext) -> Any:
    tasks = [context.wait_for_external_event(f"e{i}") for i in range(20)]
    tasks += [context.call_activity("sync_activity_with_loop", i) for i in range(20)]
    results = yield context.task_all(tasks)
    return len(results)


async def test_one_episode_at_a_time_per_instance() -> None:
    """Events and activity results for the same instances arrive concurrently; each instance's
    handler still never runs on two threads at once (several instances do run in parallel)."""
    index = AppIndex.from_app(app)
    info = index.orchestrator("waits_for_many")
    assert info is not None
    lock = threading.Lock()
    running: Counter[str] = Counter()
    overlaps: list[str] = []
    threads: set[str] = set()

    def handler(text: str) -> Any:
        iid = text.split('"InstanceId":', 1)[1].split('"', 2)[1] if '"InstanceId":' in text else "?"
        with lock:
            running[iid] += 1
            threads.add(threading.current_thread().name)
            if running[iid] > 1:
                overlaps.append(iid)
        try:
            return info.handler(text)
        finally:
            with lock:
                running[iid] -= 1

    index.orchestrators[info.name.lower()] = dataclasses.replace(info, handler=handler)
    durable = DurableHarness(index)
    try:
        ids = [await durable.astart("waits_for_many") for _ in range(4)]
        await asyncio.gather(*(durable.araise_event(iid, f"e{i}", i) for iid in ids for i in range(20)))
        statuses = await asyncio.wait_for(asyncio.gather(*(durable.arun(iid) for iid in ids)), timeout=60)
    finally:
        durable.dispatcher.close()
    assert [s.output for s in statuses] == [40] * 4
    assert overlaps == []
    assert all(name.startswith("devhost-orchestrator") for name in threads), threads


@pytest.fixture(autouse=True)
def _release_blocked() -> Any:
    yield
    RELEASE.set()


async def test_dashboard_fork_replays_user_code_off_the_loop() -> None:
    """The dashboard's fork replays the orchestrator up to the cut: that user code runs on a worker thread
    too, so an orchestrator that runs its own event loop can be forked."""
    import aiohttp

    from devhost.harness import to_json_text
    from devhost.history import EventType
    from devhost.server.app import DevHost
    from devhost.store.memory import MemoryStore

    host = DevHost(AppIndex.from_app(app), MemoryStore(), hub="ThreadHub", enable_timers=False)
    port = await host.start(0)
    base = f"http://127.0.0.1:{port}"
    webhook = f"{base}/runtime/webhooks/durabletask"

    async def finished(session: aiohttp.ClientSession, iid: str) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            async with session.get(f"{webhook}/instances/{iid}") as resp:
                body: dict[str, Any] = await resp.json()
            if body["runtimeStatus"] in ("Completed", "Failed"):
                return body
            await asyncio.sleep(0.02)
        raise AssertionError(f"{iid} did not finish")

    try:
        async with aiohttp.ClientSession() as session:
            await host.client.start("runs_its_own_loop", json.dumps(to_json_text(5)), "loop-1")  # as the SDK client
            original = await finished(session, "loop-1")
            assert original["runtimeStatus"] == "Completed", original["output"]
            assert original["output"]["orchestrator"] == 10
            async with session.get(f"{base}/devhost/api/instances/loop-1/history") as resp:
                history = (await resp.json())["history"]
            cut = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.TASK_COMPLETED)
            async with session.post(
                f"{base}/devhost/api/instances/loop-1/fork", json={"atEvent": cut, "newInstanceId": "loop-1-fork"}
            ) as resp:
                assert resp.status == 201, await resp.text()
            forked = await finished(session, "loop-1-fork")
            assert forked["runtimeStatus"] == "Completed", forked["output"]
            # the same entity again: its total grows from 40 to 80
            assert forked["output"] == {**original["output"], "entity": 80}
    finally:
        await host.stop()
