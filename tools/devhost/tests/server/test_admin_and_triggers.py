"""Non-HTTP functions: the admin endpoint, trigger values, NCRONTAB schedules and the timer loop.

Tests internals (not devhost's public API): imports `devhost.server.app`, `devhost.server.triggers`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import azure.functions as func
import pytest

from devhost.server.triggers import Schedule, ScheduleError, TimerJob, TimerScheduler, trigger_value

from .support import WEBHOOK, running_host, sample_module, wait_status


async def _until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


async def test_admin_invokes_a_service_bus_starter_with_a_durable_client() -> None:
    calls = sample_module().CALLS
    async with running_host() as (_, session, base):
        resp = await session.post(f"{base}/admin/functions/sb_start", json={"input": "carol"})
        assert resp.status == 202
        await _until(lambda: ("sb_start", "sb-carol") in calls)
        status = await wait_status(session, f"{base}{WEBHOOK}/instances/sb-carol")
        assert status["output"] == ["Hello carol-1", "Hello carol-2", "Hello carol-3"]


async def test_admin_invokes_queue_and_timer_functions() -> None:
    calls = sample_module().CALLS
    async with running_host() as (_, session, base):
        assert (await session.post(f"{base}/admin/functions/QUEUE_ITEM", json={"input": "job-7"})).status == 202
        assert (await session.post(f"{base}/admin/functions/tick", json={})).status == 202
        await _until(lambda: ("queue_item", "job-7") in calls and ("tick", False) in calls)


async def test_admin_rejections() -> None:
    async with running_host() as (_, session, base):
        assert (await session.post(f"{base}/admin/functions/nope", json={"input": ""})).status == 404
        assert (await session.post(f"{base}/admin/functions/hello", json={"input": ""})).status == 400
        assert (await session.post(f"{base}/admin/functions/hello_sequence", json={"input": ""})).status == 400
        resp = await session.post(f"{base}/admin/functions/tick", data="{bad")
        assert resp.status == 400 and "Message" in await resp.json()
        assert (await session.post(f"{base}/admin/functions/tick", json=[1])).status == 400


async def test_timer_runs_on_startup_and_on_schedule() -> None:
    fired: list[object] = []

    async def invoke(name: str, value: object) -> None:
        fired.append(value)

    scheduler = TimerScheduler([TimerJob("t", Schedule.parse("* * * * * *"), run_on_startup=True)], invoke)
    scheduler.start()
    try:
        await _until(lambda: len(fired) >= 2, timeout=4)
    finally:
        await scheduler.stop()
    assert all(isinstance(v, func.TimerRequest) for v in fired)


async def test_host_runs_timer_functions_on_startup() -> None:
    calls = sample_module().CALLS
    before = calls.count(("tick", False))
    async with running_host(enable_timers=True):
        await _until(lambda: calls.count(("tick", False)) > before)


def test_trigger_values_have_the_worker_types() -> None:
    mod = sample_module()
    sb = trigger_value("serviceBusTrigger", "body", mod.sb_start, "msg")
    assert isinstance(sb, func.ServiceBusMessage) and sb.get_body() == b"body" and sb.message_id
    q = trigger_value("queueTrigger", "qbody", mod.queue_item, "item")
    assert isinstance(q, func.QueueMessage) and q.get_body() == b"qbody" and q.dequeue_count == 1
    assert isinstance(trigger_value("timerTrigger", "", mod.tick, "timer"), func.TimerRequest)

    def typed(x: str) -> None: ...

    assert trigger_value("serviceBusTrigger", "plain", typed, "x") == "plain"


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("*/5 * * * * *", "2026-11-27T18:33:07.5", "2026-11-27T18:33:10"),
        ("0 */5 * * * *", "2026-11-27T18:33:07", "2026-11-27T18:35:00"),
        ("0 30 9 * * 1-5", "2026-11-27T18:33:07", "2026-11-30T09:30:00"),  # Friday -> Monday
        ("0 0 12 * * Mon", "2026-11-27T18:33:07", "2026-11-30T12:00:00"),
        ("0 0 0 29 2 *", "2026-11-27T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 0 13 * 5", "2026-11-27T00:00:00", "2027-08-13T00:00:00"),  # both day fields must match
        ("0 0 0 * * 7", "2026-11-27T00:00:00", "2026-11-29T00:00:00"),  # 7 is Sunday
        ("0 0 9-17/4 * JAN-MAR *", "2026-11-27T00:00:00", "2027-01-01T09:00:00"),
        ("00:00:10", "2026-11-27T00:00:00", "2026-11-27T00:00:10"),
    ],
)
def test_ncrontab_next_occurrence(text: str, after: str, expected: str) -> None:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert Schedule.parse(text).next_after(start) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["* * * * *", "61 * * * * *", "a * * * * *", "*/0 * * * * *", "0 0 0 31 2 *", "5-1 * * * * *", "00:00:00"]
)
def test_bad_schedules(text: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(text).next_after(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("settings", [{"TICK_SCHEDULE": "every minute"}, {}])
def test_bad_or_missing_timer_schedule_stops_startup(settings: dict[str, str]) -> None:
    from devhost.server.app import DevHost, HostStartupError
    from devhost.store.memory import MemoryStore

    from .support import sample_index

    with pytest.raises(HostStartupError, match="timer function 'tick'"):
        DevHost(sample_index(), MemoryStore(), settings=settings)
