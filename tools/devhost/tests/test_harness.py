"""The test harness users get: fixture, fakes, events, virtual time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devhost import DurableHarness, RuntimeStatus
from tests.apps.approval_app import app


@pytest.fixture
def durable_app():
    return app


def test_seven_day_timeout_runs_in_virtual_time(durable: DurableHarness) -> None:
    start = durable.now
    iid = durable.start("approval", {"owner": "ana", "days": 7})
    status = durable.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["outcome"] == "expired"
    assert status.custom_status == {"phase": "expired"}
    assert durable.now - start >= timedelta(days=7)


def test_event_before_timeout_with_fake_activity(durable: DurableHarness) -> None:
    calls: list[dict] = []

    def notify(msg: dict) -> str:
        calls.append(msg)
        return "fake-receipt"

    durable.fake_activity("notify", notify)
    iid = durable.start("approval", {"owner": "ana"})
    waiting = durable.run(iid, auto_advance=False)
    assert waiting.runtime_status == RuntimeStatus.RUNNING
    assert waiting.custom_status == {"phase": "waiting"}
    durable.raise_event(iid, "Approval", True)
    done = durable.run(iid)
    assert done.output == {"outcome": "approved", "receipt": "fake-receipt"}
    assert calls == [{"to": "ana", "approved": True}]


def test_real_activity_runs_when_not_faked(durable: DurableHarness) -> None:
    iid = durable.start("approval", {"owner": "bo"})
    durable.run(iid, auto_advance=False)
    durable.raise_event(iid, "Approval", False)
    assert durable.run(iid).output == {"outcome": "rejected", "receipt": "real:bo"}


def test_advance_fires_timers_in_order(durable: DurableHarness) -> None:
    iid = durable.start("reminders")
    durable.run(iid, auto_advance=False)
    durable.advance(timedelta(days=1, hours=1))
    assert durable.status(iid).runtime_status == RuntimeStatus.RUNNING
    names = [e.get("Name") for e in durable.status(iid).history if e["EventType"] == 4]
    assert names == ["notify"]
    durable.advance(timedelta(days=2))
    status = durable.status(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["real:ops", "real:ops", "real:ops"]


def test_run_with_timeout_stops_virtual_time(durable: DurableHarness) -> None:
    iid = durable.start("approval", {"owner": "ana", "days": 7})
    status = durable.run(iid, timeout=timedelta(days=2))
    assert status.runtime_status == RuntimeStatus.RUNNING
    durable.raise_event(iid, "Approval", True)
    assert durable.run(iid).output["outcome"] == "approved"


async def test_async_methods_in_an_async_test() -> None:
    harness = DurableHarness(app)
    try:
        with pytest.raises(RuntimeError, match="coroutine methods"):
            harness.start("approval", {"owner": "x"})
        iid = await harness.astart("approval", {"owner": "x", "days": 1})
        status = await harness.arun(iid)
        assert status is not None and status.output["outcome"] == "expired"
    finally:
        harness.close()


def test_unknown_orchestrator_is_a_clear_error(durable: DurableHarness) -> None:
    with pytest.raises(Exception, match="doesn't exist"):
        durable.start("no_such_orchestrator")
