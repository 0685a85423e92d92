"""The dispatcher: bounded concurrency, where activities run, poison messages.

Tests internals (not devhost's public API): imports `devhost.client`, `devhost.clock`, `devhost.dispatcher`,
`devhost.index`, `devhost.model`, `devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import azure.durable_functions as df

from devhost import DurableHarness, RuntimeStatus
from devhost.client import TaskHubClient
from devhost.clock import VirtualClock
from devhost.dispatcher import Dispatcher, DispatcherOptions
from devhost.index import AppIndex
from devhost.model import Message
from devhost.store.memory import MemoryStore

app = df.DFApp()
_lock = threading.Lock()
_running = {"now": 0, "max": 0}
_threads: dict[str, set[str]] = {"sync": set(), "async": set()}


@app.orchestration_trigger(context_name="ctx")
def fan(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    kind, n = ctx.get_input()
    results = yield ctx.task_all([ctx.call_activity(kind, i) for i in range(n)])
    return sum(results)


@app.activity_trigger(input_name="i")
def sync_work(i: int) -> int:
    with _lock:
        _running["now"] += 1
        _running["max"] = max(_running["max"], _running["now"])
    _threads["sync"].add(threading.current_thread().name)
    time.sleep(0.01)  # long enough for several to overlap if the bound allowed it
    with _lock:
        _running["now"] -= 1
    return i


@app.activity_trigger(input_name="i")
async def async_work(i: int) -> int:
    _threads["async"].add(threading.current_thread().name)
    await asyncio.sleep(0)
    return i


def test_sync_activities_run_in_a_bounded_thread_pool() -> None:
    _running.update(now=0, max=0)
    with DurableHarness(app, max_concurrent_activities=3) as harness:
        status = harness.run_to_completion("fan", ["sync_work", 12])
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == sum(range(12))
    assert 1 < _running["max"] <= 3
    assert threading.main_thread().name not in _threads["sync"]


def test_async_activities_run_on_the_event_loop() -> None:
    with DurableHarness(app) as harness:
        status = harness.run_to_completion("fan", ["async_work", 5])
    assert status.output == sum(range(5))
    assert _threads["async"] == {threading.main_thread().name}


async def test_a_message_that_keeps_failing_is_set_aside() -> None:
    """A malformed work item fails every time: after `max_dequeue_count` tries it is moved
    to the poison list (kept for inspection), not retried forever and not lost."""
    clock = VirtualClock()
    store = MemoryStore(clock)
    dispatcher = Dispatcher(AppIndex.from_app(app), store, options=DispatcherOptions(max_dequeue_count=3))
    bad = Message("x", {"EventType": 4, "Name": "sync_work"}, queue="work")  # no EventId
    await store.enqueue([bad])
    for _ in range(5):
        await dispatcher.run_until_idle()
        clock.advance(timedelta(minutes=11))  # past any back-off
    dispatcher.close()
    assert await store.depth("work") == 0
    assert [m.id for m in store.poisoned] == [bad.id]


async def test_a_new_host_reruns_activities_a_crashed_host_scheduled() -> None:
    """Activities are recorded only by their TaskScheduled event: a host that starts finds
    the ones without a result and runs them, so a crash between the checkpoint and the
    activity loses nothing."""
    store = MemoryStore()
    index = AppIndex.from_app(app)
    first = Dispatcher(index, store)
    iid = await TaskHubClient(index, store).start("fan", json.dumps(json.dumps(["sync_work", 4])))
    await first.pump()  # the start is processed: four activities scheduled and checkpointed
    while first._orch_tasks:
        await asyncio.wait(first._orch_tasks)
    for task in list(first._activity_tasks):  # the host dies before they run
        task.cancel()
    first.close()
    scheduled = await store.load(iid)
    assert scheduled is not None and sum(ev["EventType"] == 4 for ev in scheduled.history) == 4
    assert not any(ev["EventType"] == 5 for ev in scheduled.history)

    second = Dispatcher(index, store)
    await second.run_until_idle()
    second.close()
    done = await store.load(iid)
    assert done is not None and done.runtime_status == RuntimeStatus.COMPLETED
    assert done.output == str(sum(range(4)))
    assert sum(ev["EventType"] == 5 for ev in done.history) == 4
