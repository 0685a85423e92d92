"""Durable timers, external events and custom status through the engine.

Time is virtual: a 10-day timer costs milliseconds, because the harness jumps the
clock to the next due timer once nothing else can happen.

Tests internals (not devhost's public API): imports `devhost.history`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from devhost import DurableHarness, RuntimeStatus
from devhost.history import parse_ts

from .sdk_support import events, kinds, new_harness

# What devhost advertises to the SDK, like the Azure Storage provider: 6-day timers, 3-day slices.
MAX_SHORT_TIMER = timedelta(days=6)
SLICE = timedelta(days=3)

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


@pytest.fixture
def harness() -> Iterator[DurableHarness]:
    yield from new_harness()


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ------------------------------------------------------------------------------- timers
def test_short_timer_fires_at_its_time(harness: DurableHarness) -> None:
    status = harness.run_to_completion("sleeper", 2)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    fire_at = _iso(status.output["fire_at"])
    assert fire_at - _iso(status.output["started"]) == timedelta(hours=2)
    assert _iso(status.output["woke"]) >= fire_at
    assert harness.now >= fire_at
    (created,) = events(status, "TimerCreated")
    assert created["EventId"] == 0
    assert parse_ts(created["FireAt"]) == fire_at
    (fired,) = events(status, "TimerFired")
    assert fired["TimerId"] == 0


@pytest.mark.parametrize(("days", "slices"), [(7, 2), (10, 3)])
def test_long_timer_is_sliced_and_fires_after_the_deadline(harness: DurableHarness, days: int, slices: int) -> None:
    # The engine advertises a 6-day maximum timer with 3-day slices (as Azure Storage does), so
    # the SDK turns a longer timer into a chain of TimerCreated slices (docs/durable-protocol.md §2.4.3).
    status = harness.run_to_completion("sleeper", days * 24)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    started = _iso(status.output["started"])
    fire_at = _iso(status.output["fire_at"])
    assert fire_at - started == timedelta(days=days)
    assert _iso(status.output["woke"]) >= fire_at
    assert harness.now >= fire_at

    created = events(status, "TimerCreated")
    assert [ev["EventId"] for ev in created] == list(range(slices))
    assert [ev["TimerId"] for ev in events(status, "TimerFired")] == list(range(slices))
    fire_times = [parse_ts(ev["FireAt"]) for ev in created]
    assert fire_times[0] == started + SLICE
    assert fire_times[-1] == fire_at
    assert fire_times == sorted(fire_times)
    gaps = [later - earlier for earlier, later in zip([started, *fire_times], fire_times)]
    # Intermediate slices are one interval long; the last covers the rest, at most the maximum.
    assert all(SLICE <= gap < SLICE + timedelta(seconds=1) for gap in gaps[:-1])
    assert gaps[-1] <= MAX_SHORT_TIMER
    # Each slice after the first was scheduled while the previous one fired.
    assert kinds(status) == ["ExecutionStarted", "TimerCreated"] + ["TimerFired", "TimerCreated"] * (slices - 1) + [
        "TimerFired",
        "ExecutionCompleted",
    ]


def test_seven_day_approval_times_out_in_virtual_time(harness: DurableHarness) -> None:
    start = harness.now
    status = harness.run_to_completion("approval", 7 * 24)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["approved"] is None
    timed_out_at = _iso(status.output["timed_out_at"])
    assert timed_out_at >= start + timedelta(days=7)
    assert harness.now >= start + timedelta(days=3)
    assert status.custom_status == {"stage": "decided"}
    assert len(events(status, "TimerCreated")) == 2  # a 3-day slice, then the rest
    assert events(status, "TaskScheduled") == []


def test_approval_event_beats_the_timer_and_the_timer_is_ignored_later(harness: DurableHarness) -> None:
    start = harness.now
    iid = harness.start("approval", 2 * 24)
    waiting = harness.run(iid, auto_advance=False)
    assert waiting.runtime_status == RuntimeStatus.RUNNING
    assert waiting.custom_status["stage"] == "awaiting approval"
    assert _iso(waiting.custom_status["deadline"]) >= start + timedelta(days=2)

    harness.raise_event(iid, "Approval", {"by": "alice"})
    status = harness.run(iid)

    # The orchestrator cancelled the timer, so nothing is open and it completes at once.
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"approved": {"by": "alice"}, "note": "Hello approver"}
    assert status.custom_status == {"stage": "decided"}
    assert harness.now < start + timedelta(days=1)  # the timer never had to fire
    assert len(events(status, "TimerCreated")) == 1
    assert events(status, "TimerFired") == []

    # When the abandoned timer comes due it must not disturb the finished instance.
    harness.advance(timedelta(days=3))
    later = harness.status(iid)
    assert later.runtime_status == RuntimeStatus.COMPLETED
    assert later.output == status.output
    assert later.history == status.history


def test_a_cancelled_timer_over_six_days_holds_the_instance_until_its_first_part_fires(harness: DurableHarness) -> None:
    # Timers over maximumShortTimerDuration (6 days) are split into 3-day parts by the SDK's LongTimerTask,
    # whose cancel() (azure-functions-durable 1.7.0, models/Task.py) marks only the parent action, never the
    # part in the action list. The extension therefore never sees isCanceled (OutOfProcOrchestrationShim.cs
    # 129) and DTFx keeps the part open (TaskOrchestrationExecutor.cs 153): Running until that 3-day part fires.
    start = harness.now
    iid = harness.start("approval", 7 * 24)
    harness.run(iid, auto_advance=False)
    harness.raise_event(iid, "Approval", {"by": "alice"})
    held = harness.run(iid, auto_advance=False)
    assert held.runtime_status == RuntimeStatus.RUNNING
    assert held.custom_status == {"stage": "decided"}

    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"approved": {"by": "alice"}, "note": "Hello approver"}
    assert harness.now >= start + timedelta(days=3)


def test_short_approval_timeout_wins(harness: DurableHarness) -> None:
    iid = harness.start("approval", 1)
    assert harness.run(iid, auto_advance=False).runtime_status == RuntimeStatus.RUNNING
    harness.advance(timedelta(minutes=59))
    assert harness.status(iid).runtime_status == RuntimeStatus.RUNNING
    harness.advance(timedelta(minutes=2))
    status = harness.status(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["approved"] is None
    (fired,) = events(status, "TimerFired")
    assert fired["TimerId"] == 0


# ----------------------------------------------------------------------- external events
def test_event_raised_before_the_orchestrator_waits_is_kept(harness: DurableHarness) -> None:
    iid = harness.start("wait_after_activity")
    harness.raise_event(iid, "Go", "early")  # before any episode ran
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["Hello first", "early"]
    history = kinds(status)
    # The event really arrived before the wait existed: ahead of the activity's result.
    assert history.index("EventRaised") < history.index("TaskCompleted")
    assert history[0] == "ExecutionStarted"


def test_two_sequential_waits_get_two_different_events(harness: DurableHarness) -> None:
    iid = harness.start("two_waits")
    assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING

    harness.raise_event(iid, "Step", 1)
    middle = harness.run(iid)
    assert middle.runtime_status == RuntimeStatus.RUNNING
    assert middle.custom_status == {"first": 1}

    harness.raise_event(iid, "Step", 2)
    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == [1, 2]


def test_two_events_queued_before_the_first_episode_arrive_in_order(harness: DurableHarness) -> None:
    iid = harness.start("two_waits")
    harness.raise_event(iid, "Step", "one")
    harness.raise_event(iid, "Step", "two")
    status = harness.run(iid)

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["one", "two"]
    assert [ev["Input"] for ev in events(status, "EventRaised")] == ['"one"', '"two"']


def test_event_payload_types_round_trip(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    harness.run(iid)
    payload = {"ok": True, "items": [1, 2.5, None, "x"], "nested": {"k": "v"}}
    harness.raise_event(iid, "Go", payload)
    status = harness.run(iid)
    assert status.output == payload


def test_event_for_another_name_does_not_complete_the_wait(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    harness.run(iid)
    harness.raise_event(iid, "go", "wrong case")  # names match case-sensitively
    harness.raise_event(iid, "Stop", "wrong name")
    assert harness.run(iid).runtime_status == RuntimeStatus.RUNNING
    harness.raise_event(iid, "Go", "right")
    assert harness.run(iid).output == "right"


# ------------------------------------------------------------------------- custom status
def test_custom_status_visible_while_waiting_and_at_the_end(harness: DurableHarness) -> None:
    iid = harness.start("status_waiter")
    waiting = harness.run(iid)
    assert waiting.runtime_status == RuntimeStatus.RUNNING
    assert waiting.custom_status == {"stage": "waiting"}

    harness.raise_event(iid, "Go", 42)
    done = harness.run(iid)
    assert done.runtime_status == RuntimeStatus.COMPLETED
    assert done.output == 42
    assert done.custom_status == {"stage": "done", "value": 42}


@pytest.mark.parametrize("hours", [1, 7 * 24])
def test_cancelled_timer_firing_later_does_not_disturb_a_running_instance(harness: DurableHarness, hours: int) -> None:
    iid = harness.start("race_then_wait", hours)
    harness.run(iid, auto_advance=False)
    harness.raise_event(iid, "First", "one")
    assert harness.run(iid, auto_advance=False).runtime_status == RuntimeStatus.RUNNING

    # Let the cancelled timer (all its slices, for the long one) come due while the instance waits.
    harness.advance(timedelta(hours=hours + 1))
    waiting = harness.status(iid)
    assert waiting.runtime_status == RuntimeStatus.RUNNING
    assert events(waiting, "TimerFired") != []

    harness.raise_event(iid, "Second", "two")
    status = harness.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["one", "two"]
