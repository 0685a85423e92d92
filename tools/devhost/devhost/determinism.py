"""Replay a recorded orchestration history against the CURRENT code and report the first divergence.

Why: an orchestrator must make the same decisions every time it replays. Changing its code while
instances are in flight (or between a recorded run and a refactor) breaks them in ways that only show
up days later in Azure ("Non-Deterministic workflow detected"). Replaying a recording catches that in a
unit test or from the command line, before deploying.

How: no second replay engine. The recording is fed, episode by episode, through the engine's own pure
step (`process_orchestration`), which drives the real SDK exactly as devhost does when it runs the app.
The recorded completions (activity results, timer firings, external events, entity responses) are
delivered as messages; activities, sub-orchestrations and entities never run. After each episode, what
the current code scheduled is compared with what the recording scheduled.

Two recording formats are accepted:

* full (DTFx events, as the store keeps them; see `history_view.export_instance`): episodes are delimited
  by OrchestratorStarted, whose timestamps become the step's `now`, and every scheduling event is compared
  by type, name and sequence number, plus the final outcome (ExecutionCompleted / ContinueAsNew).
* HTTP (the Durable HTTP API's `historyEvents`, or a whole status payload holding it): sequence numbers
  and episode boundaries are gone, so each recorded non-scheduling event becomes one episode and each
  recorded completion is mapped onto a task the current code has pending: by FunctionName (and Input when
  recorded) for activities and sub-orchestrations, by FireAt (else the earliest pending timer) for timers,
  entity responses by the position of their request. A completion nothing pending matches is a
  divergence. An episode runs at the event's Timestamp, moved forward to the start time of the recorded
  episode that processed it when the history shows one (see `_episode_times`), because orchestrators read
  that time. At the end the outcome, the still-pending tasks, the number of timers and the entity messages
  are compared. Prefer the full format: it is exact; the HTTP one is what you can get from Azure.

Entry points: `replay(app, recording) -> ReplayReport`, `assert_replays(app, recording)` for pytest, and
`python -m devhost replay FILE` (see `devhost.cli`).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from . import history as h
from .actions import Action, ActionType, action_type
from .history import COMPLETION_ID_FIELD, SCHEDULING_TYPES, Event, EventType, RuntimeStatus
from .history_view import ORCHESTRATION_STATUS_NAMES, event_type_of, parse_json_token
from .index import AppIndex
from .model import Instance, Message
from .orchestration import EngineOptions, StepResult, process_orchestration

FULL = "full"
HTTP = "http"

# Events a host delivers to an orchestration (the "new events" of an episode).
INCOMING_TYPES = frozenset(
    {
        EventType.EXECUTION_STARTED,
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.SUB_ORCHESTRATION_COMPLETED,
        EventType.SUB_ORCHESTRATION_FAILED,
        EventType.TIMER_FIRED,
        EventType.EVENT_RAISED,
        EventType.EXECUTION_TERMINATED,
        EventType.EXECUTION_SUSPENDED,
        EventType.EXECUTION_RESUMED,
    }
)
# Events an episode produces: what the orchestrator decided. These are what gets compared.
OUTCOME_TYPES = frozenset({EventType.EXECUTION_COMPLETED, EventType.CONTINUE_AS_NEW})
OUTPUT_TYPES = SCHEDULING_TYPES | OUTCOME_TYPES
CONTROL_TYPES = frozenset({EventType.EXECUTION_TERMINATED, EventType.EXECUTION_SUSPENDED, EventType.EXECUTION_RESUMED})
_TASK_TYPES = frozenset({EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED})
_SCHEDULED_BY = {
    EventType.TASK_COMPLETED: EventType.TASK_SCHEDULED,
    EventType.TASK_FAILED: EventType.TASK_SCHEDULED,
    EventType.SUB_ORCHESTRATION_COMPLETED: EventType.SUB_ORCHESTRATION_CREATED,
    EventType.SUB_ORCHESTRATION_FAILED: EventType.SUB_ORCHESTRATION_CREATED,
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DEFAULT_INSTANCE_ID = "replay-instance"


# --------------------------------------------------------------------------- results
@dataclass
class ReplayReport:
    """The outcome of a replay.

    `divergence` names the episode (1-based, counting OrchestratorStarted episodes in the full format and
    replayed events in the HTTP format), the sequence number when there is one, what the recording did and
    what the current code did instead. `notes` flag fidelity limits of the recording (e.g. an HTTP history
    without outputs) that do not make the replay fail but may explain a divergence.
    """

    ok: bool
    divergence: str | None
    episodes: int
    format: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people: what the CLI prints."""
        if self.ok:
            return f"OK: replayed {self.episodes} episodes"
        return f"DIVERGENCE: {self.divergence}"

    def __str__(self) -> str:
        return self.summary()


class NondeterminismError(AssertionError):
    """Raised by `assert_replays`; an AssertionError so pytest reports it as a plain test failure."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__("\n".join([str(report.divergence), *(f"note: {note}" for note in report.notes)]))
        self.report = report


class Diverged(Exception):
    """Stops a replay at the first divergence (also used by fork.py to refuse a cut that no longer replays)."""


# ------------------------------------------------------------------------- recordings
@dataclass
class Recording:
    """A parsed recording: its format, its events (types normalized) and what the container said about it."""

    format: str
    events: list[Event]
    instance_id: str | None = None
    name: str | None = None
    execution_id: str | None = None
    # HTTP status payloads: the instance input as the payload shows it (parsed JSON), if present.
    payload_input: Any = None
    has_payload_input: bool = False


def load_recording(source: Any) -> Recording:
    """Parse a recording: a dict/list, JSON text, or a path to a JSON file.

    Accepted shapes: the full export (`{"instanceId", "name", "executionId", "input", "history"}`), a bare list
    of DTFx events (int or name EventType), an HTTP status payload (`{"historyEvents": [...], ...}`) or a bare
    `historyEvents` list. Full vs HTTP is told apart by content, not by the container: full histories carry
    `EventId`s and OrchestratorStarted events, the HTTP view has neither.
    """
    data = source
    if isinstance(source, os.PathLike):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    elif isinstance(source, (str, bytes)):
        text = source.decode() if isinstance(source, bytes) else source
        if text.lstrip()[:1] in ("{", "["):
            data = json.loads(text)
        else:
            data = json.loads(Path(text).read_text(encoding="utf-8"))

    meta: dict[str, Any] = {}
    if isinstance(data, dict):
        if "historyEvents" in data:
            raw = data.get("historyEvents")
            if raw is None:
                raise ValueError(
                    "the status payload has no history: fetch it with "
                    "showHistory=true&showHistoryOutput=true&showInput=true"
                )
        elif "history" in data:
            raw = data.get("history")
        else:
            raise ValueError(
                "a recording must be a list of history events, a devhost export with 'history', "
                "or an HTTP status payload with 'historyEvents'"
            )
        meta = data
    elif isinstance(data, list):
        raw = data
    else:
        raise ValueError(f"a recording must be a JSON object or list, not {type(data).__name__}")
    if not isinstance(raw, list) or not all(isinstance(ev, dict) for ev in raw):
        raise ValueError("the history must be a list of event objects")

    is_full = any("EventId" in ev for ev in raw) or any(
        event_type_of(ev) == EventType.ORCHESTRATOR_STARTED for ev in raw
    )
    rec = Recording(
        format=FULL if is_full else HTTP,
        events=[_normalize(ev, full=is_full) for ev in raw],
        instance_id=meta.get("instanceId"),
        name=meta.get("name"),
        execution_id=meta.get("executionId"),
    )
    if "historyEvents" in meta and "input" in meta:
        rec.payload_input = meta["input"]
        rec.has_payload_input = True
    if not rec.events:
        raise ValueError("the recording has no events")
    return rec


def _normalize(ev: Event, *, full: bool) -> Event:
    out = dict(ev)
    out["EventType"] = event_type_of(ev)
    if "Timestamp" not in out:
        raise ValueError(f"history event without a Timestamp: {ev!r}")
    if full:
        out.setdefault("EventId", -1)
        out["IsPlayed"] = False  # delivered events are new to the episode that receives them
    status = out.get("OrchestrationStatus")
    if isinstance(status, str):
        by_name = {name: num for num, name in ORCHESTRATION_STATUS_NAMES.items()}
        if status in by_name:
            out["OrchestrationStatus"] = by_name[status]
    return out


# ---------------------------------------------------------------------- entry points
def replay(app: Any, recording: Any, *, options: EngineOptions | None = None) -> ReplayReport:
    """Replay `recording` against `app` (a DFApp/FunctionApp or an AppIndex) and report the first divergence.

    `recording` is anything `load_recording` accepts (or a `Recording`). `options` may carry non-default
    timer settings; its `new_id` is replaced by a deterministic one so that two replays of one recording are
    identical. Malformed recordings raise ValueError; divergences never raise, they are in the report.
    """
    index = app if isinstance(app, AppIndex) else AppIndex.from_app(app)
    rec = recording if isinstance(recording, Recording) else load_recording(recording)
    counter = itertools.count(1)
    opts = replace(options or EngineOptions(), new_id=lambda: f"{next(counter):032x}")
    replayer: _Replayer = FullReplayer(index, opts, rec) if rec.format == FULL else _HttpReplayer(index, opts, rec)
    try:
        replayer.run()
    except Diverged as exc:
        return ReplayReport(False, str(exc) + replayer.hint(), replayer.episodes, rec.format, replayer.notes)
    return ReplayReport(True, None, replayer.episodes, rec.format, replayer.notes)


def assert_replays(app: Any, recording: Any, *, options: EngineOptions | None = None) -> ReplayReport:
    """pytest-friendly: replay and raise `NondeterminismError` (an AssertionError) with the divergence text."""
    report = replay(app, recording, options=options)
    if not report.ok:
        raise NondeterminismError(report)
    return report


# -------------------------------------------------------------------------- shared
class _Replayer:
    """Drives `process_orchestration` over one recording and keeps the current instance."""

    def __init__(self, index: AppIndex, options: EngineOptions, rec: Recording) -> None:
        self.index = index
        self.options = options
        self.rec = rec
        self.iid = rec.instance_id
        self.inst: Instance | None = None
        self.episodes = 0
        self.notes: list[str] = []
        self.actions: list[Action] = []
        self.raised: Counter[str] = Counter()  # external events delivered, per name (this execution)
        self.ended_in: int | None = None
        # The number divergences name: the recorded episode (full format) or the replayed event (HTTP).
        self.label = 0
        self._msg_ids = itertools.count(1)

    def run(self) -> None:
        raise NotImplementedError

    @property
    def instance_id(self) -> str:
        return self.iid or _DEFAULT_INSTANCE_ID

    def message(self, ev: Event, *, execution_id: str | None = None, sender: str | None = None) -> Message:
        return Message(
            self.instance_id, ev, execution_id=execution_id, sender=sender, id=f"replay-{next(self._msg_ids)}"
        )

    def step(self, messages: list[Message], now: datetime, *, implied_resume: bool = True) -> list[Event]:
        """One recorded episode through the engine; returns the events it appended for that execution.

        `implied_resume`: if the current run is suspended but the recording applies events here, the
        instance must have been resumed (histories written by older devhost engines lack ExecutionResumed),
        so resume it first. The HTTP format turns this off while a recorded resume is still to come: there
        an event's timestamp is its arrival, and it may have waited in the buffer.
        """
        k = self.label
        inst = self.inst
        self.ensure_open(messages[0].event if messages else None)
        if implied_resume and inst is not None and inst.runtime_status == RuntimeStatus.SUSPENDED:
            types = [m.event["EventType"] for m in messages]
            if (
                any(t not in CONTROL_TYPES for t in types)
                and EventType.EXECUTION_RESUMED not in types
                and EventType.EXECUTION_TERMINATED not in types
            ):
                messages = [self.message(h.execution_resumed(now, None)), *messages]
        old_history = inst.history if inst is not None else None
        before = len(old_history) if old_history is not None else 0
        old_execution = inst.execution_id if inst is not None else None

        result = process_orchestration(self.index, inst, messages, now, self.options)
        self.episodes += 1
        self._check_applied(result, k)
        new_inst = result.instance
        if new_inst is None:
            raise ValueError("the recording does not start with an ExecutionStarted event")
        expected_execution = old_execution or messages[0].execution_id
        continued = expected_execution is not None and new_inst.execution_id != expected_execution
        if continued and old_history is not None:
            new_events = old_history[before:]
        elif continued:
            # continue_as_new in the very first episode: the engine replaced the history list it built.
            started = new_inst.history[1] if len(new_inst.history) > 1 else {}
            carried = parse_json_token(started.get("Input"))
            new_events = [
                {
                    "EventType": int(EventType.CONTINUE_AS_NEW),
                    "EventId": -1,
                    "Timestamp": h.format_ts(now),
                    "OrchestrationStatus": 2,
                    "Result": carried,
                }
            ]
        else:
            new_events = new_inst.history[before:]
        if result.actions:
            self.actions = result.actions
        self.inst = new_inst
        if new_inst.runtime_status.is_terminal and self.ended_in is None:
            self.ended_in = k
        return new_events

    def ensure_open(self, ev: Event | None) -> None:
        """A recording that goes on after the current code has ended the orchestration diverges there."""
        if self.inst is not None and self.inst.runtime_status.is_terminal:
            raise Diverged(
                f"episode {self.label}: in episode {self.ended_in} the current code already "
                f"{_phrase(self.end_event(), False)}, but the recording continues with {_incoming(ev)}"
            )

    def _check_applied(self, result: StepResult, k: int) -> None:
        for msg in result.deferred:
            ev = msg.event
            t = ev["EventType"]
            if t in COMPLETION_ID_FIELD:
                seq = ev[COMPLETION_ID_FIELD[t]]
                raise Diverged(
                    f"episode {k}, sequence number {seq}: the recording delivered {_incoming(ev)}, "
                    f"but the current code never scheduled sequence number {seq}"
                )
            raise Diverged(f"episode {k}: the current code has no pending call for the recorded {_incoming(ev)}")
        for msg, reason in result.dropped:
            raise Diverged(
                f"episode {k}: the current code could not take the recorded {_incoming(msg.event)} ({reason})"
            )

    def end_event(self) -> Event | None:
        hist = self.inst.history if self.inst is not None else []
        return next((ev for ev in reversed(hist) if ev["EventType"] in OUTCOME_TYPES), None)

    def note_external(self, name: str) -> None:
        self.raised[name] += 1

    def waits(self) -> Counter[str]:
        return Counter(
            str(a.get("externalEventName"))
            for a in self.actions
            if action_type(a) == ActionType.WAIT_FOR_EXTERNAL_EVENT
        )

    def hint(self) -> str:
        """Explain external events the current code never waited for: a renamed wait looks like a stall."""
        waits = self.waits()
        unmatched = [name for name, n in self.raised.items() if n > waits.get(name, 0)]
        if not unmatched:
            return ""
        waiting = ", ".join(f"'{w}'" for w in sorted(waits)) or "nothing"
        names = ", ".join(f"'{n}'" for n in unmatched)
        return (
            f" (note: the recording raised external event {names}, which the current code never waited for; "
            f"it waits for {waiting})"
        )

    def reset_execution(self) -> None:
        self.inst = None
        self.actions = []
        self.raised = Counter()
        self.ended_in = None


# ---------------------------------------------------------------------- full format
class FullReplayer(_Replayer):
    """Rebuilds a full-fidelity recording episode by episode (fork.py reuses it to rebuild a cut)."""

    def run(self) -> None:
        episodes = _split_episodes(self.rec.events)
        if not episodes:
            raise ValueError("the recording has no OrchestratorStarted episodes")
        if self.iid is None:
            started = next((ev for ev in self.rec.events if ev["EventType"] == EventType.EXECUTION_STARTED), None)
            if started is not None:
                self.iid = (started.get("OrchestrationInstance") or {}).get("InstanceId")
        request_ids = _request_ids(self.rec.events)  # recorded entity request id -> (sequence number, target)
        for number, ep in enumerate(episodes, start=1):
            self.label = number
            os_event, body = ep[0], ep[1:]
            now = h.parse_ts(os_event["Timestamp"])
            incoming = [ev for ev in body if ev["EventType"] in INCOMING_TYPES]
            recorded = [ev for ev in body if ev["EventType"] in OUTPUT_TYPES]
            if any(ev["EventType"] == EventType.EXECUTION_STARTED for ev in incoming):
                self.reset_execution()
            elif self.inst is None:
                raise ValueError("the recording does not start with an ExecutionStarted event")
            messages = [self._message_for(ev, request_ids) for ev in incoming]
            if not messages:
                if recorded:
                    raise ValueError(f"episode {number} schedules work but delivers no event: not a DTFx history")
                continue  # nothing was delivered, so there is nothing to replay
            produced = [ev for ev in self.step(messages, now) if ev["EventType"] in OUTPUT_TYPES]
            self._compare(number, recorded, produced)

    def _message_for(self, ev: Event, request_ids: dict[str, tuple[int, str]]) -> Message:
        t = ev["EventType"]
        if t == EventType.EXECUTION_STARTED:
            oi = ev.get("OrchestrationInstance") or {}
            execution_id = oi.get("ExecutionId") or self.rec.execution_id or self.options.new_id()
            ev = {**ev, "OrchestrationInstance": {"InstanceId": self.instance_id, "ExecutionId": execution_id}}
            return self.message(ev, execution_id=execution_id)
        if t == EventType.EVENT_RAISED:
            name = str(ev.get("Name") or "")
            if name in request_ids:
                seq, target = request_ids[name]
                current = self._current_request_id(seq)
                return self.message({**ev, "Name": current or name}, sender=target)
            self.note_external(name)
        return self.message(ev)

    def _current_request_id(self, seq: int) -> str | None:
        """The request id the current code used for the entity call with sequence number `seq`.

        devhost derives request ids from (instance, execution, sequence number), so they usually equal the
        recorded ones; Azure uses random GUIDs, hence the mapping."""
        for ev in self.inst.history if self.inst else []:
            if ev["EventType"] == EventType.EVENT_SENT and ev.get("EventId") == seq:
                return _request(ev).get("id")
        return None

    def _compare(self, k: int, recorded: list[Event], produced: list[Event]) -> None:
        for i in range(max(len(recorded), len(produced))):
            rec = recorded[i] if i < len(recorded) else None
            new = produced[i] if i < len(produced) else None
            if rec is not None and new is not None and _same(rec, new):
                continue
            seq = _seq(rec) if _seq(rec) is not None else _seq(new)
            where = f"episode {k}" + (f", sequence number {seq}" if seq is not None else "")
            raise Diverged(f"{where}: the recording {_phrase(rec, True)}, but the current code {_phrase(new, True)}")


def _split_episodes(events: list[Event]) -> list[list[Event]]:
    episodes: list[list[Event]] = []
    for ev in events:
        if ev["EventType"] == EventType.ORCHESTRATOR_STARTED:
            episodes.append([ev])
        elif not episodes:
            raise ValueError(f"the history must start with OrchestratorStarted, not {h.event_name(ev)}")
        else:
            episodes[-1].append(ev)
    return episodes


def _request_ids(events: list[Event]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for ev in events:
        if ev["EventType"] == EventType.EVENT_SENT:
            rid = _request(ev).get("id")
            if rid:
                out[str(rid)] = (int(ev.get("EventId", -1)), str(ev.get("InstanceId") or ""))
    return out


# ---------------------------------------------------------------------- HTTP format
class _HttpReplayer(_Replayer):
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
        for ev in events:
            t = ev["EventType"]
            now = _episode_time(episode_times, h.parse_ts(ev["Timestamp"]))
            if t == EventType.EXECUTION_STARTED:
                if self.inst is not None:
                    raise ValueError("an HTTP history holds one execution, but this one has two ExecutionStarted")
                self.label += 1
                self.step([self._start_message(ev)], now)
            elif self.inst is None:
                raise ValueError(f"the recording has {h.event_name(ev)} before ExecutionStarted")
            elif t in _TASK_TYPES:
                self.pending_tasks.append(ev)
            elif t == EventType.TIMER_CREATED:
                self.timers += 1
            elif t == EventType.EVENT_SENT:
                self.sent.append(ev)
            elif t in OUTCOME_TYPES:
                recorded_end = ev
            elif t in INCOMING_TYPES:
                self.label += 1
                self.ensure_open(ev)
                resumes_left -= t == EventType.EXECUTION_RESUMED
                self.step([self._message_for(ev, now)], now, implied_resume=resumes_left == 0)
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
        if t in _SCHEDULED_BY:
            seq = self._match_task(ev, k)
            if t == EventType.TASK_COMPLETED:
                return self.message(h.task_completed(now, seq, _result_text(ev)))
            if t == EventType.SUB_ORCHESTRATION_COMPLETED:
                return self.message(h.sub_orchestration_completed(now, seq, _result_text(ev)))
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
        kind = _SCHEDULED_BY[ev["EventType"]]
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
            candidates = [(seq, p) for seq, p in same_name if _json_equal(p.get("Input"), ev.get("Input"))]
        if candidates:
            return candidates[0][0]
        what = f"{noun} '{name}'" + (f" with input {_short(ev.get('Input'))}" if "Input" in ev else "")
        others = ", ".join(
            f"'{p.get('Name')}'"
            + (f" with input {_short(p.get('Input'))}" if "Input" in ev else "")
            + f" (sequence number {seq})"
            for seq, p in pending
        )
        pending_text = f"its pending {noun} calls: {others}" if others else f"it has no {noun} call pending"
        raise Diverged(
            f"episode {k}: the recording {_completion_verb(ev)} {what}, but the current code never "
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
        recorded_ids = [str(_request(ev).get("id") or "") for ev in self.sent]
        if name in recorded_ids:
            pos = recorded_ids.index(name)
            if pos < len(sent):
                return str(_request(sent[pos]).get("id") or name), str(sent[pos].get("InstanceId") or "")
            return None
        if not _UUID.match(name) or name in self.waits():
            return None
        answered = {str(ev.get("Name")) for ev in hist if ev["EventType"] == EventType.EVENT_RAISED}
        for ev in sent:
            req = _request(ev)
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
                    f"episode {k}: the recording {_phrase(recorded_end, False)}, but the current code did "
                    f"not (it is {inst.runtime_status.value}, pending: {self._describe_pending()})"
                )
            if not _same_outcome(recorded_end, end):
                if _status(recorded_end) == _status(end):
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
                    f"episode {self.ended_in}: the recording {_phrase(recorded_end, False)}, but the "
                    f"current code {_phrase(end, False)}"
                )
            return
        if end is not None:
            raise Diverged(
                f"episode {self.ended_in}: the current code {_phrase(end, False)}, but the recording is still running"
            )
        recorded_pending = sorted(_task_key(ev) for ev in self.pending_tasks)
        current = self._pending()
        current_tasks = sorted(_task_key(ev) for ev in current.values() if ev["EventType"] in _TASK_TYPES)
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
            if rec is not None and new is not None and _same_message(rec, new):
                continue
            seq = new.get("EventId") if new is not None else None
            where = f"episode {k}" + (f", sequence number {seq}" if seq is not None else "")
            raise Diverged(
                f"{where}: entity message {i + 1}: the recording {_phrase(rec, True)}, but the current "
                f"code {_phrase(new, True)}"
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
        stamp = ev.get("ScheduledTime") if t in _SCHEDULED_BY else ev.get("Timestamp")
        if stamp and (t in _SCHEDULED_BY or t in SCHEDULING_TYPES or t == EventType.EXECUTION_COMPLETED):
            times.add(h.parse_ts(str(stamp)))
    return sorted(times)


def _episode_time(times: list[datetime], arrival: datetime) -> datetime:
    """The first recorded episode start at or after the event's arrival (the episode that processed it,
    unless that one wrote nothing); the arrival time itself when no such episode is known."""
    i = bisect.bisect_left(times, arrival)
    return times[i] if i < len(times) else arrival


# ------------------------------------------------------------------ comparisons
def _same(rec: Event, new: Event) -> bool:
    t = rec["EventType"]
    if t != new["EventType"]:
        return False
    if t in _TASK_TYPES:
        return (
            rec.get("EventId") == new.get("EventId")
            and str(rec.get("Name", "")).lower() == str(new.get("Name", "")).lower()
        )
    if t == EventType.TIMER_CREATED:
        return bool(rec.get("EventId") == new.get("EventId"))
    if t == EventType.EVENT_SENT:
        return rec.get("EventId") == new.get("EventId") and _same_message(rec, new)
    if t == EventType.EXECUTION_COMPLETED:
        return _same_outcome(rec, new)
    if t == EventType.CONTINUE_AS_NEW:
        return _json_equal(rec.get("Result"), new.get("Result"))
    return True


def _same_message(rec: Event, new: Event) -> bool:
    """EventSent: same target, and the same operation when the recording shows it."""
    if str(rec.get("InstanceId") or "") != str(new.get("InstanceId") or ""):
        return False
    if "Input" not in rec:
        return True
    return _request(rec).get("op") == _request(new).get("op")


def _status(ev: Event) -> int | None:
    status = ev.get("OrchestrationStatus")
    if isinstance(status, str):
        return {name: num for num, name in ORCHESTRATION_STATUS_NAMES.items()}.get(status)
    return status if isinstance(status, int) else None


def _same_outcome(rec: Event, new: Event) -> bool:
    """Same status; for Completed also the same output. Failure reasons are not compared: they embed
    tracebacks (file paths, line numbers) that change with any edit."""
    if rec["EventType"] != new["EventType"] or _status(rec) != _status(new):
        return False
    if rec["EventType"] == EventType.CONTINUE_AS_NEW:
        return _json_equal(rec.get("Result"), new.get("Result"))
    if _status(rec) == 1 and "Result" in rec:
        return _json_equal(rec.get("Result"), new.get("Result"))
    return True


def _json_equal(a: Any, b: Any) -> bool:
    return bool(parse_json_token(a) == parse_json_token(b))


def _seq(ev: Event | None) -> int | None:
    if ev is None or ev["EventType"] not in SCHEDULING_TYPES:
        return None
    seq = ev.get("EventId")
    return seq if isinstance(seq, int) and seq >= 0 else None


def _task_key(ev: Event) -> tuple[str, str]:
    kind = "activity" if ev["EventType"] == EventType.TASK_SCHEDULED else "sub-orchestration"
    return kind, str(ev.get("Name", "")).lower()


def _request(ev: Event) -> dict[str, Any]:
    value = parse_json_token(ev.get("Input"))
    return value if isinstance(value, dict) else {}


def _result_text(ev: Event) -> str | None:
    """HTTP `Result` (parsed JSON) back to the JSON text the SDK expects; absent or null -> None."""
    value = ev.get("Result")
    return None if value is None else json.dumps(value)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_name(ev: Event) -> str:
    status = _status(ev)
    return ORCHESTRATION_STATUS_NAMES.get(status, str(status)) if status is not None else "?"


def _phrase(ev: Event | None, in_episode: bool) -> str:
    """What an output event says the orchestrator did, as a verb phrase."""
    if ev is None:
        return "did nothing more in that episode" if in_episode else "did nothing more"
    t = ev["EventType"]
    if t == EventType.TASK_SCHEDULED:
        return f"scheduled activity '{ev.get('Name')}'"
    if t == EventType.SUB_ORCHESTRATION_CREATED:
        return f"started sub-orchestration '{ev.get('Name')}'"
    if t == EventType.TIMER_CREATED:
        return f"created a timer (fire at {ev.get('FireAt')})"
    if t == EventType.EVENT_SENT:
        req = _request(ev)
        verb = "signalled" if req.get("signal") else "called"
        op = f" operation '{req.get('op')}'" if req else ""
        return f"{verb} entity{op} on '{ev.get('InstanceId')}'"
    if t == EventType.CONTINUE_AS_NEW:
        return f"continued as new with input {_short(ev.get('Result'))}"
    if t == EventType.EXECUTION_COMPLETED:
        status = _status_name(ev)
        if status == RuntimeStatus.COMPLETED.value:
            if "Result" not in ev:
                return "completed the orchestration"
            return f"completed the orchestration with output {_short(ev.get('Result'))}"
        if status == RuntimeStatus.FAILED.value:
            return f"failed the orchestration: {_short(ev.get('Result'), 400)}"
        return f"ended the orchestration as {status}"
    return h.event_name(ev)


def _completion_verb(ev: Event) -> str:
    t = ev["EventType"]
    return "failed" if t in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED) else "completed"


def _incoming(ev: Event | None) -> str:
    """A delivered event, for messages."""
    if ev is None:
        return "more events"
    t = ev["EventType"]
    name = h.event_name(ev)
    if ev.get("FunctionName") and t != EventType.EXECUTION_STARTED:
        return f"{name} '{ev.get('FunctionName')}'"
    if t in COMPLETION_ID_FIELD and ev.get(COMPLETION_ID_FIELD[t]) is not None:
        return f"{name} for sequence number {ev.get(COMPLETION_ID_FIELD[t])}"
    if t == EventType.EVENT_RAISED:
        return f"{name} '{ev.get('Name')}'"
    return name


__all__ = [
    "FULL",
    "HTTP",
    "NondeterminismError",
    "Recording",
    "ReplayReport",
    "assert_replays",
    "load_recording",
    "replay",
]
