"""The dispatcher: bounded concurrency, where activities run, poison messages.

Tests internals (not devhost's public API): imports `devhost.client`, `devhost.clock`, `devhost.dispatcher`,
`devhost.index`, `devhost.model`, `devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from devhost import DurableHarness, RuntimeStatus
from devhost import history as h
from devhost.client import TaskHubClient
from devhost.clock import VirtualClock
from devhost.dispatcher import Dispatcher, DispatcherOptions
from devhost.index import AppIndex
from devhost.model import Instance, Message
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


# ------------------------------------------------------------- exactly one start
def _start(store: MemoryStore, iid: str, n: int, generation: int = 0) -> Message:
    """A start message as a client sends it (before it writes the Pending row)."""
    exec_id = f"exec-{n}-{generation}"
    ev = h.execution_started(
        store.clock.now(),
        instance_id=iid,
        execution_id=exec_id,
        name="fan",
        input_text=json.dumps(json.dumps(["async_work", n])),
        generation=generation,
    )
    return Message(iid, ev, execution_id=exec_id)


def _starts(inst: Instance | None) -> list[str]:
    assert inst is not None
    return [ev["OrchestrationInstance"]["ExecutionId"] for ev in inst.history if ev["EventType"] == 0]


async def test_only_the_start_matching_the_pending_row_runs() -> None:
    """Twenty clients race to start one id: all send their start message, one writes the Pending row.
    Only that start runs; the others are dropped (DTFx: `DedupeExecutionStartedMessagesAsync`,
    DurableTask.AzureStorage/OrchestrationSessionManager.cs: a start that does not match the
    Instances row's ExecutionId is never run)."""
    store = MemoryStore()
    index = AppIndex.from_app(app)
    msgs = [_start(store, "race", n) for n in range(20)]
    await store.enqueue(msgs)
    winner = msgs[7]
    await store.create(
        Instance(
            "race",
            "fan",
            RuntimeStatus.PENDING,
            winner.execution_id or "",
            store.clock.now(),
            store.clock.now(),
            input=winner.event["Input"],
        )
    )
    dispatcher = Dispatcher(index, store)
    await dispatcher.run_until_idle()
    dispatcher.close()
    done = await store.load("race")
    assert done is not None and done.runtime_status == RuntimeStatus.COMPLETED
    assert _starts(done) == [winner.execution_id] and done.output == str(sum(range(7)))


async def test_starts_with_no_row_yet_run_at_most_one() -> None:
    """No Pending row yet (the clients have not written it): one start per batch runs and its
    checkpoint creates the row; every later start loses to it."""
    store = MemoryStore()
    dispatcher = Dispatcher(AppIndex.from_app(app), store)
    await store.enqueue([_start(store, "norow", n) for n in range(1, 6)])
    await dispatcher.run_until_idle()
    dispatcher.close()
    done = await store.load("norow")
    assert done is not None and done.runtime_status == RuntimeStatus.COMPLETED
    assert len(_starts(done)) == 1


async def test_a_stale_start_never_restarts_a_finished_instance() -> None:
    """A start message of the same generation that turns up after the instance finished (a
    losing client's, or one redelivered after a crash) is dropped; a restart (next generation)
    waits for its Pending row and then runs."""
    store = MemoryStore()
    index = AppIndex.from_app(app)
    dispatcher = Dispatcher(index, store)
    iid = await TaskHubClient(index, store).start("fan", json.dumps(json.dumps(["async_work", 3])), "again")
    await dispatcher.run_until_idle()
    first = await store.load(iid)
    assert first is not None and first.runtime_status == RuntimeStatus.COMPLETED
    await store.enqueue([_start(store, iid, 9)])
    await dispatcher.run_until_idle()
    after = await store.load(iid)
    assert after is not None and after.history == first.history and after.output == str(sum(range(3)))

    restart = _start(store, iid, 4, generation=1)  # a client restart: its row is not written yet
    await store.enqueue([restart])
    await dispatcher.pump()
    while dispatcher._orch_tasks:
        await asyncio.wait(dispatcher._orch_tasks)
    assert (await store.load(iid)).output == str(sum(range(3)))  # type: ignore[union-attr]
    row = Instance(
        iid,
        "fan",
        RuntimeStatus.PENDING,
        restart.execution_id or "",
        store.clock.now(),
        store.clock.now(),
        generation=1,
        etag=after.etag,
    )
    await store.create(row)
    deadline = time.monotonic() + 10
    while True:
        now_inst = await store.load(iid)
        assert now_inst is not None
        if now_inst.runtime_status == RuntimeStatus.COMPLETED and now_inst.execution_id == restart.execution_id:
            break
        assert time.monotonic() < deadline, "the restart never ran"
        await dispatcher.run_until_idle()
        await asyncio.sleep(0.05)  # the deferred start comes back after its 1 s delay
    dispatcher.close()
    assert _starts(await store.load(iid)) == [restart.execution_id]


# ------------------------------------------------------------- entity failures are visible
@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    context.set_state(context.get_state(lambda: 0) + int(context.get_input()))


async def test_a_failed_signal_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    """Nobody waits for a signal's result, so a failed operation must at least be logged: a raw HTTP
    signal whose body is plain text (not JSON) reaches the entity as undecodable input."""
    store = MemoryStore()
    index = AppIndex.from_app(app)
    client = TaskHubClient(index, store)
    dispatcher = Dispatcher(index, store)
    await client.signal_entity("counter", "k", "add", "5")
    await client.signal_entity("counter", "k", "add", "not json")
    with caplog.at_level(logging.WARNING, logger="devhost"):
        await dispatcher.run_until_idle()
    dispatcher.close()
    assert await client.read_entity("counter", "k") == (True, "5")
    failed = [r.getMessage() for r in caplog.records if "failed 'add' operation" in r.getMessage()]
    assert len(failed) == 1 and "@counter@k" in failed[0]
    assert "(signal) raised" in failed[0] and "Expecting value" in failed[0]


# ------------------------------------------------- results durable before they leave
@app.orchestration_trigger(context_name="ctx")
def leaky_parent(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    value = yield ctx.call_activity("fresh_value", None)
    echoed = yield ctx.call_sub_orchestrator("echo_child", value)
    return [value, echoed]


@app.orchestration_trigger(context_name="ctx")
def echo_child(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return ctx.get_input()


@app.activity_trigger(input_name="unused")
def fresh_value(unused: None) -> str:
    return uuid.uuid4().hex  # another value each run: what a re-run after a crash would return


class _Crash(BaseException):
    """The host dies here (not an error devhost handles)."""


class _CrashingStore(MemoryStore):
    """Dies once at `point`: right after the first message to another instance is sent, or right
    after the first checkpoint that holds the activity's result."""

    def __init__(self, clock: VirtualClock, point: str) -> None:
        super().__init__(clock)
        self.point: str | None = point

    async def enqueue(self, messages: Any) -> None:
        await super().enqueue(messages)
        if self.point == "after-send" and any(m.instance_id != "leaky" and m.sender == "leaky" for m in messages):
            self.point = None
            raise _Crash

    async def checkpoint(self, instance: Instance, *, new_events_from: int, history_reset: bool) -> None:
        await super().checkpoint(instance, new_events_from=new_events_from, history_reset=history_reset)
        if self.point == "after-checkpoint" and any(ev["EventType"] == 5 for ev in instance.history):
            self.point = None
            raise _Crash


@pytest.mark.parametrize("point", ["after-send", "after-checkpoint"])
async def test_a_crash_never_lets_a_child_see_a_result_the_parent_forgets(point: str) -> None:
    """Issue 13: an activity run in-process has its result only in memory until the checkpoint. An
    episode that sends something derived from it to another instance (here a sub-orchestration's
    input) must make it durable first; otherwise a crash between the send and the checkpoint re-runs
    the activity, the parent records a new value and its child holds the old one. Crashed at either
    side of that window, parent and child agree."""
    clock = VirtualClock()
    store = _CrashingStore(clock, point)
    index = AppIndex.from_app(app)
    first = Dispatcher(index, store)
    await TaskHubClient(index, store).start("leaky_parent", None, "leaky")
    await first.run_until_idle()  # runs until the crash kills the work item
    assert store.point is None, "the crash point was never reached"
    for task in list(first._orch_tasks | first._activity_tasks | first._background):
        task.cancel()
    first.close()
    clock.advance(timedelta(minutes=6))  # what the dead host had received becomes visible again
    second = Dispatcher(index, store)
    await second.run_until_idle()
    second.close()
    parent = await store.load("leaky")
    assert parent is not None and parent.runtime_status == RuntimeStatus.COMPLETED, parent
    value, echoed = json.loads(parent.output or "null")
    recorded = [
        json.loads(ev["Result"]) for ev in parent.history if ev["EventType"] == 5 and ev["TaskScheduledId"] == 0
    ]
    assert recorded == [value] and echoed == value
