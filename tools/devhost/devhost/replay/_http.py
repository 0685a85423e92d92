"""Replaying an HTTP recording (the Durable HTTP API's `historyEvents`): what you can get from Azure.

Sequence numbers and episode boundaries are gone, so each recorded non-scheduling event becomes one
episode and each recorded completion is mapped onto a task the current code has pending: by FunctionName
(and Input when recorded) for activities and sub-orchestrations, by FireAt (else the earliest pending
timer) for timers, entity responses by the position of their request. A completion nothing pending
matches is a divergence. An episode runs at the event's Timestamp, moved forward to the start time of the
recorded episode that processed it when the history shows one (see `_episode_times`), because
orchestrators read that time. At the end the outcome, the still-pending tasks, the number of timers and
the entity messages are compared. Prefer the full format: it is exact.
"""

from __future__ import annotations

import bisect
import json
import re
from datetime import datetime

from .. import describe
from .. import history as h
from ..history import COMPLETION_ID_FIELD, SCHEDULING_TYPES, Event, EventType
from ..index import AppIndex
from ..model import Message
from ..orchestration import EngineOptions
from ._base import Replayer
from ._compare import (
    INCOMING_TYPES,
    OUTCOME_TYPES,
    OUTPUT_TYPES,
    SCHEDULED_BY,
    TASK_TYPES,
    json_equal,
    request_of,
    result_text,
    same_message,
    same_outcome,
    task_key,
)
from ._recording import Recording
from ._report import Diverged

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class HttpReplayer(Replayer):
    def __init__(self, index: AppIndex, options: EngineOptions, rec: Recording) -> None:
        super().__init__(index, options, rec)
        self.sent: list[Event] = []  # recorded EventSent, in order
        self.timers = 0  # recorded TimerCreated
        self.pending_tasks: list[Event] = []  # recorded scheduling events that never completed

    def run(self) -> None:
        events = self.rec.events
        started = next((ev for ev in events if ev["EventType"] == EventType.EXECUTION_STARTED), None)
        if started is None:
            raise ValueError("the recording has no ExecutionStarted event")
        raised = [ev for ev in events if ev["EventType"] == EventType.EVENT_RAISED]
        if "Input" not in started or not all("Input" in ev for ev in raised):
            self.notes.append(
                "the recording has no inputs (showInput=false): orchestrator input, event payloads and "
                "activity inputs are unknown, so results are matched to activities by name only"
            )
        if any("Result" not in ev for ev in events if ev["EventType"] == EventType.TASK_COMPLETED):
            self.notes.append(
                "the recording has no outputs (showHistoryOutput=false): activities and "
                "sub-orchestrations return None in the replay"
            )
        recorded_end: Event | None = None
        resumes_left = sum(1 for ev in events if ev["EventType"] == EventType.EXECUTION_RESUMED)
        episode_times = _episode_times(events)
        # Work recorded after an event: without a later ExecutionResumed, that event was applied after a
        # resume the recording lacks (older devhost engines); otherwise it arrived while suspended (A13).
        last_output = max((i for i, ev in enumerate(events) if ev["EventType"] in OUTPUT_TYPES), default=-1)
        for position, ev in enumerate(events):
            t = ev["EventType"]
            now = _episode_time(episode_times, h.parse_ts(ev["Timestamp"]))
            if t == EventType.EXECUTION_STARTED:
                if self.inst is not None:
                    raise ValueError("an HTTP history holds one execution, but this one has two ExecutionStarted")
                self.label += 1
                self.step([self._start_message(ev)], now)
            elif self.inst is None:
                raise ValueError(f"the recording has {h.event_name(ev)} before ExecutionStarted")
            elif t in TASK_TYPES:
                self.pending_tasks.append(ev)
            elif t == EventType.TIMER_CREATED:
                self.timers += 1
            elif t == EventType.EVENT_SENT:
                self.sent.append(ev)
                self._check_sent_in_time(ev)
            elif t in OUTCOME_TYPES:
                recorded_end = ev
            elif t in INCOMING_TYPES:
                self.label += 1
                self.ensure_open(ev)
                resumes_left -= t == EventType.EXECUTION_RESUMED
                self.step(
                    [self._message_for(ev, now)], now, implied_resume=resumes_left == 0 and position < last_output
                )
        self._check_end(recorded_end)

    def _start_message(self, ev: Event) -> Message:
        if "Input" in ev:
            input_text = ev.get("Input")
        elif self.rec.has_payload_input and self.rec.payload_input is not None:
            input_text = json.dumps(self.rec.payload_input)
        else:
            input_text = None
        execution_id = self.rec.execution_id or self.options.new_id()
        start = h.execution_started(
            h.parse_ts(ev["Timestamp"]),
            instance_id=self.instance_id,
            execution_id=execution_id,
            name=str(ev.get("FunctionName") or self.rec.name or ""),
            input_text=input_text,
            generation=int(ev.get("Generation") or 0),
            version=self.rec.version,
        )
        return self.message(start, execution_id=execution_id)

    # ----------------------------------------------------------- mapping
    def _pending(self) -> dict[int, Event]:
        """Scheduling events of the current run that have no completion yet, by sequence number."""
        hist = self.inst.history if self.inst else []
        done = {ev[COMPLETION_ID_FIELD[ev["EventType"]]] for ev in hist if ev["EventType"] in COMPLETION_ID_FIELD}
        kinds = (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED, EventType.TIMER_CREATED)
        return {ev["EventId"]: ev for ev in hist if ev["EventType"] in kinds and ev["EventId"] not in done}

    def _message_for(self, ev: Event, now: datetime) -> Message:
        t = ev["EventType"]
        k = self.label
        if t in SCHEDULED_BY:
            seq = self._match_task(ev, k)
            if t == EventType.TASK_COMPLETED:
                return self.message(h.task_completed(now, seq, result_text(ev)))
            if t == EventType.SUB_ORCHESTRATION_COMPLETED:
                return self.message(h.sub_orchestration_completed(now, seq, result_text(ev)))
            reason, details = str(ev.get("Reason") or ""), ev.get("Details")
            if t == EventType.TASK_FAILED:
                return self.message(h.task_failed(now, seq, reason, details))
            return self.message(h.sub_orchestration_failed(now, seq, reason, details))
        if t == EventType.TIMER_FIRED:
            seq, fire_at = self._match_timer(ev, k)
            return self.message(h.timer_fired(now, seq, fire_at))
        if t == EventType.EVENT_RAISED:
            return self._event_message(ev, now)
        if t == EventType.EXECUTION_TERMINATED:
            return self.message(h.execution_terminated(now, ev.get("Input")))
        if t == EventType.EXECUTION_SUSPENDED:
            return self.message(h.execution_suspended(now, ev.get("Reason")))
        return self.message(h.execution_resumed(now, ev.get("Reason")))

    def _match_task(self, ev: Event, k: int) -> int:
        kind = SCHEDULED_BY[ev["EventType"]]
        noun = "activity" if kind == EventType.TASK_SCHEDULED else "sub-orchestration"
        name = ev.get("FunctionName")
        if not name:
            raise ValueError(
                f"{h.event_name(ev)} at {ev['Timestamp']} has no FunctionName: the recording lost its "
                "scheduling event and cannot be mapped"
            )
        pending = sorted((seq, p) for seq, p in self._pending().items() if p["EventType"] == kind)
        same_name = [(seq, p) for seq, p in pending if str(p.get("Name", "")).lower() == str(name).lower()]
        candidates = same_name
        if "Input" in ev:
            candidates = [(seq, p) for seq, p in same_name if json_equal(p.get("Input"), ev.get("Input"))]
        if candidates:
            return candidates[0][0]
        what = f"{noun} '{name}'" + (f" with input {describe.short(ev.get('Input'))}" if "Input" in ev else "")
        others = ", ".join(
            f"'{p.get('Name')}'"
            + (f" with input {describe.short(p.get('Input'))}" if "Input" in ev else "")
            + f" (sequence number {seq})"
            for seq, p in pending
        )
        pending_text = f"its pending {noun} calls: {others}" if others else f"it has no {noun} call pending"
        raise Diverged(
            f"episode {k}: the recording {describe.completion_verb(ev)} {what}, but the current code never "
            f"scheduled it ({pending_text})"
        )

    def _match_timer(self, ev: Event, k: int) -> tuple[int, datetime]:
        pending = [(seq, p) for seq, p in self._pending().items() if p["EventType"] == EventType.TIMER_CREATED]
        timers = sorted((h.parse_ts(p["FireAt"]), seq) for seq, p in pending)
        if not timers:
            raise Diverged(
                f"episode {k}: the recording fired a timer (FireAt {ev.get('FireAt')}), but the current "
                "code has no timer pending"
            )
        if ev.get("FireAt"):
            fire_at = h.parse_ts(ev["FireAt"])
            exact = [(at, seq) for at, seq in timers if at == fire_at]
            if exact:
                return exact[0][1], exact[0][0]
        at, seq = timers[0]
        return seq, at

    def _event_message(self, ev: Event, now: datetime) -> Message:
        name = str(ev.get("Name") or "")
        target = self._entity_response_target(name)
        if target is not None:
            request_id, entity = target
            return self.message(h.event_raised(now, request_id, ev.get("Input")), sender=entity)
        self.note_external(name)
        return self.message(h.event_raised(now, name, ev.get("Input")))

    def _entity_response_target(self, name: str) -> tuple[str, str] | None:
        """Map an entity response onto the current run's entity call: (its request id, the entity id).

        Recorded request ids are matched by position among the EventSent events when the recording has
        inputs; without inputs, a GUID-named event nobody waits for goes to the oldest unanswered call."""
        hist = self.inst.history if self.inst else []
        sent = [ev for ev in hist if ev["EventType"] == EventType.EVENT_SENT]
        recorded_ids = [str(request_of(ev).get("id") or "") for ev in self.sent]
        if name in recorded_ids:
            pos = recorded_ids.index(name)
            if pos < len(sent):
                return str(request_of(sent[pos]).get("id") or name), str(sent[pos].get("InstanceId") or "")
            return None
        if not _UUID.match(name) or name in self.waits():
            return None
        answered = {str(ev.get("Name")) for ev in hist if ev["EventType"] == EventType.EVENT_RAISED}
        for ev in sent:
            req = request_of(ev)
            if not req.get("signal") and req.get("id") and req["id"] not in answered:
                return str(req["id"]), str(ev.get("InstanceId") or "")
        return None

    # --------------------------------------------------------------- end
    def _check_end(self, recorded_end: Event | None) -> None:
        inst = self.inst
        assert inst is not None
        k = self.label
        end = self.end_event() if inst.runtime_status.is_terminal else None
        if recorded_end is not None:
            if end is None:
                raise Diverged(
                    f"episode {k}: the recording {describe.did(recorded_end, False)}, but the current code did "
                    f"not (it is {inst.runtime_status.value}, pending: {self._describe_pending()})"
                )
            if not same_outcome(recorded_end, end):
                if describe.status_of(recorded_end) == describe.status_of(end):
                    self.notes.append(
                        "outputs built from current_utc_datetime or new_uuid may not be reproducible from an HTTP "
                        "history: it has no start time for episodes that scheduled nothing"
                        + (
                            ""
                            if self.iid
                            else ", and new_uuid also needs the instance id (replay the whole status "
                            "payload, not just its historyEvents)"
                        )
                        + "; a full export (history_view.export_instance) has both"
                    )
                raise Diverged(
                    f"episode {self.ended_in}: the recording {describe.did(recorded_end, False)}, but the "
                    f"current code {describe.did(end, False)}"
                )
            return
        if end is not None:
            raise Diverged(
                f"episode {self.ended_in}: the current code {describe.did(end, False)}, "
                "but the recording is still running"
            )
        recorded_pending = sorted(task_key(ev) for ev in self.pending_tasks)
        current = self._pending()
        current_tasks = sorted(task_key(ev) for ev in current.values() if ev["EventType"] in TASK_TYPES)
        if recorded_pending != current_tasks:
            rec_text = ", ".join(f"{kind} '{name}'" for kind, name in recorded_pending) or "nothing"
            raise Diverged(
                f"episode {k}: at the end of the recording it waited for {rec_text}, but the current code "
                f"waits for {self._describe_pending(tasks_only=True)}"
            )
        self._check_timers_and_messages(k)

    def _check_timers_and_messages(self, k: int) -> None:
        hist = self.inst.history if self.inst else []
        timers = sum(1 for ev in hist if ev["EventType"] == EventType.TIMER_CREATED)
        if timers != self.timers:
            raise Diverged(
                f"episode {k}: the recording created {self.timers} timer(s), but the current code created {timers}"
            )
        sent = [ev for ev in hist if ev["EventType"] == EventType.EVENT_SENT]
        for i in range(max(len(sent), len(self.sent))):
            rec = self.sent[i] if i < len(self.sent) else None
            new = sent[i] if i < len(sent) else None
            if rec is not None and new is not None and same_message(rec, new):
                continue
            if rec is not None and new is not None:
                # DTFx compares an EventSent by its Name only, "op" for every entity message
                # (TaskOrchestrationContext.cs 401): another operation or target is a warning (Severity.WARNING).
                text = (
                    f"episode {k}: entity message {i + 1}: the recording {describe.did(rec, True)}, the current "
                    f"code {describe.did(new, True)} (Azure does not detect this)"
                )
                self.warn(text)
                continue
            seq = new.get("EventId") if new is not None else None
            where = f"episode {k}" + (f", sequence number {seq}" if seq is not None else "")
            raise Diverged(
                f"{where}: entity message {i + 1}: the recording {describe.did(rec, True)}, but the current "
                f"code {describe.did(new, True)}"
            )

    def _check_sent_in_time(self, rec: Event) -> None:
        """The recording sent this message before the events that follow it arrived; the current code must
        have sent as many by now. DTFx replays history in order while the shim awaits each action in turn
        (OutOfProcOrchestrationShim.cs 199-219): a recorded EventSent met before the code reaches its action
        (e.g. behind a wait moved in front of it) fails with "the current replay execution hasn't (yet?)
        scheduled this task" (TaskOrchestrationContext.cs 377-386). Sent earlier than recorded is fine."""
        hist = self.inst.history if self.inst else []
        sent = sum(1 for ev in hist if ev["EventType"] == EventType.EVENT_SENT)
        if sent < len(self.sent):
            raise Diverged(
                f"episode {self.label}: the recording {describe.did(rec, True)} by then (entity message "
                f"{len(self.sent)}), but the current code has sent only {sent} message(s) at that point: it "
                f"waits for {self._describe_pending()} first"
            )

    def _describe_pending(self, tasks_only: bool = False) -> str:
        parts = []
        for seq, ev in sorted(self._pending().items()):
            t = ev["EventType"]
            if t == EventType.TIMER_CREATED:
                if not tasks_only:
                    parts.append(f"a timer at {ev.get('FireAt')} (sequence number {seq})")
            else:
                kind = "activity" if t == EventType.TASK_SCHEDULED else "sub-orchestration"
                parts.append(f"{kind} '{ev.get('Name')}' (sequence number {seq})")
        waits = self.waits() - self.raised
        parts += [f"external event '{name}'" for name in sorted(waits.elements())] if not tasks_only else []
        return ", ".join(parts) or "nothing"


def _episode_times(events: list[Event]) -> list[datetime]:
    """Start times of the recorded episodes that wrote something, recovered from an HTTP history.

    The HTTP view drops OrchestratorStarted, but what an episode wrote is stamped with its start time:
    TimerCreated, EventSent, still-pending TaskScheduled/SubOrchestrationInstanceCreated, the `ScheduledTime`
    merged into completions, and ExecutionCompleted. The orchestrator reads that time
    (`current_utc_datetime`, `new_uuid`), so the replay should run each episode at it, not at the arrival
    time of the event that triggered it.
    """
    times: set[datetime] = set()
    for ev in events:
        t = ev["EventType"]
        stamp = ev.get("ScheduledTime") if t in SCHEDULED_BY else ev.get("Timestamp")
        if stamp and (t in SCHEDULED_BY or t in SCHEDULING_TYPES or t == EventType.EXECUTION_COMPLETED):
            times.add(h.parse_ts(str(stamp)))
    return sorted(times)


def _episode_time(times: list[datetime], arrival: datetime) -> datetime:
    """The first recorded episode start at or after the event's arrival (the episode that processed it,
    unless that one wrote nothing); the arrival time itself when no such episode is known."""
    i = bisect.bisect_left(times, arrival)
    return times[i] if i < len(times) else arrival
