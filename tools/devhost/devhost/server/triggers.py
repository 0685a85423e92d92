"""Non-HTTP triggers: timer schedules (NCRONTAB) and the admin endpoint's trigger values.

Timer triggers use the Functions host's six-field NCRONTAB format
(`{second} {minute} {hour} {day} {month} {day-of-week}`) or a `hh:mm:ss` TimeSpan, in
UTC. NCrontab, unlike Vixie cron, requires both day-of-month and day-of-week to match
when both are restricted; we keep its semantics so schedules fire when they would in
Azure. A small parser is enough here and avoids a dependency.

`POST /admin/functions/{name}` with `{"input": "..."}` builds the value the worker would
hand the function for its trigger type (a `func.ServiceBusMessage` for Service Bus, a
`func.QueueMessage` for storage queues, a timer request for timers, ...).

`TriggerLoops` runs one loop per triggered function (the timer scheduler here, the queue poller in queues.py).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

log = logging.getLogger("devhost")

_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$")


class ScheduleError(ValueError):
    """A timer schedule the host would reject; reported at startup with the function name."""


def _parse_field(text: str, low: int, high: int, names: dict[str, int] | None, what: str) -> frozenset[int]:
    values: set[int] = set()

    def number(token: str) -> int:
        key = token.lower()
        if names and key[:3] in names and key.isalpha():
            return names[key[:3]]
        if not token.isdigit():
            raise ScheduleError(f"{what}: {token!r} is not a number")
        return int(token)

    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{what}: empty list item in {text!r}")
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{what}: bad step in {text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = number(a), number(b)
        else:
            start = number(part)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"{what}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if what == "day-of-week" and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed timer schedule; `next_after(t)` is the first occurrence strictly after t (UTC)."""

    text: str
    seconds: frozenset[int] = frozenset()
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    interval: timedelta | None = None
    times: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = text.strip()
        m = _TIMESPAN.match(text)
        if m:
            d, hh, mm, ss = (int(g) if g else 0 for g in m.groups())
            interval = timedelta(days=d, hours=hh, minutes=mm, seconds=ss)
            if interval <= timedelta(0):
                raise ScheduleError(f"timer interval {text!r} must be positive")
            return cls(text, interval=interval)
        fields = text.split()
        if len(fields) == 5:
            raise ScheduleError(f"schedule {text!r} has 5 fields; NCRONTAB needs 6 (seconds first), e.g. '0 {text}'")
        if len(fields) != 6:
            raise ScheduleError(f"schedule {text!r} must have 6 fields: second minute hour day month day-of-week")
        seconds = _parse_field(fields[0], 0, 59, None, "second")
        minutes = _parse_field(fields[1], 0, 59, None, "minute")
        hours = _parse_field(fields[2], 0, 23, None, "hour")
        return cls(
            text,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            days=_parse_field(fields[3], 1, 31, None, "day"),
            months=_parse_field(fields[4], 1, 12, _MONTHS, "month"),
            weekdays=_parse_field(fields[5], 0, 7, _DAYS, "day-of-week"),
            times=tuple(sorted((h, m, s) for h in hours for m in minutes for s in seconds)),
        )

    def next_after(self, after: datetime) -> datetime:
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        if self.interval is not None:
            return after + self.interval
        t = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day = t.replace(hour=0, minute=0, second=0)
        first = bisect.bisect_left(self.times, (t.hour, t.minute, t.second))
        for _ in range(366 * 5):
            weekday = (day.weekday() + 1) % 7  # Python Monday=0 -> cron Sunday=0
            if (
                day.month in self.months
                and day.day in self.days
                and weekday in self.weekdays
                and first < len(self.times)
            ):
                h, m, s = self.times[first]
                return day.replace(hour=h, minute=m, second=s)
            day += timedelta(days=1)
            first = 0
        raise ScheduleError(f"schedule {self.text!r} never fires")


def timer_request(
    schedule: Schedule | None, *, past_due: bool = False, last: datetime | None = None, next_: datetime | None = None
) -> Any:
    """The value a timer function receives (`func.TimerRequest` shape, as the worker builds it)."""
    from azure.functions.timer import TimerRequest

    status = {}
    if last is not None or next_ is not None:
        status = {
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": next_.isoformat() if next_ else None,
            "LastUpdated": datetime.now(UTC).isoformat(),
        }
    return TimerRequest(
        past_due=past_due,
        schedule_status=status,
        schedule={"AdjustForDST": schedule is not None and schedule.interval is None},
    )


def _annotation(handler: Callable[..., Any], param: str) -> Any:
    import inspect

    try:
        parameter = inspect.signature(handler).parameters[param]
    except (KeyError, TypeError, ValueError):
        return inspect.Parameter.empty
    annotation = parameter.annotation
    if isinstance(annotation, str):  # `from __future__ import annotations` in the app
        try:
            annotation = inspect.signature(handler, eval_str=True).parameters[param].annotation
        except Exception:
            annotation = {"str": str, "bytes": bytes}.get(annotation, annotation)
    return annotation


def trigger_value(
    kind: str, input_text: str, handler: Callable[..., Any], param: str, message_id: str | None = None
) -> Any:
    """Build the trigger argument for an admin invocation from its `input` string (and, for
    queue-like triggers, an optional message id, to show what a redelivery does)."""
    annotation = _annotation(handler, param)
    now = datetime.now(UTC)
    if kind == "timerTrigger":
        return timer_request(None)
    if annotation is str:
        return input_text
    if annotation is bytes:
        return input_text.encode()
    body = input_text.encode()
    if kind == "serviceBusTrigger":
        from azure.functions.servicebus import ServiceBusMessage

        return ServiceBusMessage(
            body=body,
            message_id=message_id or uuid.uuid4().hex,
            application_properties={},
            user_properties={},
            content_type=None,
            delivery_count=1,
            enqueued_time_utc=now,
            sequence_number=1,
            expires_at_utc=now + timedelta(days=14),
            locked_until=now + timedelta(minutes=1),
            lock_token=str(uuid.uuid4()),
            trigger_metadata={},
        )
    if kind == "queueTrigger":
        from azure.functions.queue import QueueMessage

        return QueueMessage(
            id=message_id or str(uuid.uuid4()),
            body=body,
            dequeue_count=1,
            insertion_time=now,
            expiration_time=now + timedelta(days=7),
            time_next_visible=now + timedelta(minutes=10),
            pop_receipt=uuid.uuid4().hex,
        )
    if kind == "eventHubTrigger":
        from azure.functions import EventHubEvent

        return EventHubEvent(body=body, enqueued_time=now, sequence_number=1, offset="0")
    if kind == "eventGridTrigger":
        from azure.functions import EventGridEvent

        data = json.loads(input_text) if input_text.strip() else {}
        return EventGridEvent(
            id=data.get("id", str(uuid.uuid4())),
            data=data.get("data", data),
            topic=data.get("topic", ""),
            subject=data.get("subject", ""),
            event_type=data.get("eventType", ""),
            event_time=now,
            data_version=data.get("dataVersion", "1.0"),
        )
    return input_text


@dataclass
class TimerJob:
    """One timer-triggered function and its parsed schedule."""

    name: str
    schedule: Schedule
    run_on_startup: bool


Invoke = Callable[[str, Any], Awaitable[Any]]
Job = TypeVar("Job")


class TriggerLoops(Generic[Job]):
    """One loop (`_run`) per triggered function, started together and cancelled together at shutdown."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    async def _run(self, job: Job) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._tasks.extend(asyncio.ensure_future(self._run(job)) for job in self.jobs)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class TimerScheduler(TriggerLoops[TimerJob]):
    """Fires timer functions on schedule until stopped; one late tick is marked past_due.

    A run that is still going when the next occurrence comes is not overlapped (the
    host's singleton lock does the same): the occurrence is skipped."""

    def __init__(self, jobs: list[TimerJob], invoke: Invoke, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(jobs)
        self.invoke = invoke
        self.now = now or (lambda: datetime.now(UTC))

    async def _fire(self, job: TimerJob, past_due: bool, last: datetime | None, nxt: datetime) -> None:
        try:
            await self.invoke(job.name, timer_request(job.schedule, past_due=past_due, last=last, next_=nxt))
        except Exception:  # already logged by the invoker; a failing timer keeps its schedule
            pass

    async def _run(self, job: TimerJob) -> None:
        last: datetime | None = None
        due = job.schedule.next_after(self.now())
        if job.run_on_startup:
            await self._fire(job, False, None, due)
            last = self.now()
        while True:
            delay = (due - self.now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            fired_at = self.now()
            past_due = (fired_at - due).total_seconds() > 1.0
            nxt = job.schedule.next_after(max(fired_at, due))
            await self._fire(job, past_due, last, nxt)
            last = fired_at
            due = job.schedule.next_after(max(self.now(), due))
