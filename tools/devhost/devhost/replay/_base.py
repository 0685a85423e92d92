"""What both replayers share: driving the engine's pure step over a recording, episode by episode.

No second replay engine: each recorded episode goes through `process_orchestration`, which drives the real
SDK exactly as devhost does when it runs the app. The recorded completions are delivered as messages;
activities, sub-orchestrations and entities never run.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime

from .. import describe
from .. import history as h
from ..actions import Action, ActionType, action_type
from ..history import COMPLETION_ID_FIELD, Event, EventType, RuntimeStatus
from ..history_view import parse_json_token
from ..index import AppIndex
from ..model import Instance, Message
from ..orchestration import EngineOptions, StepResult, process_orchestration
from ._compare import CONTROL_TYPES, OUTCOME_TYPES
from ._recording import Recording
from ._report import Diverged

DEFAULT_INSTANCE_ID = "replay-instance"


class Replayer:
    """Drives `process_orchestration` over one recording and keeps the current instance."""

    def __init__(self, index: AppIndex, options: EngineOptions, rec: Recording) -> None:
        self.index = index
        self.options = options
        self.rec = rec
        self.iid = rec.instance_id
        self.inst: Instance | None = None
        self.episodes = 0
        self.notes: list[str] = []
        self.warnings: list[str] = []  # what only devhost's stricter check sees (see ReplayReport)
        self.actions: list[Action] = []
        self.raised: Counter[str] = Counter()  # external events delivered, per name (this execution)
        self.ended_in: int | None = None
        # The number divergences name: the recorded episode (full format) or the replayed event (HTTP).
        self.label = 0
        self._msg_ids = itertools.count(1)

    def warn(self, text: str) -> None:
        """A difference only devhost's stricter check sees: reported once."""
        if text not in self.warnings:
            self.warnings.append(text)

    def run(self) -> None:
        raise NotImplementedError

    @property
    def instance_id(self) -> str:
        return self.iid or DEFAULT_INSTANCE_ID

    def message(self, ev: Event, *, execution_id: str | None = None, sender: str | None = None) -> Message:
        return Message(
            self.instance_id, ev, execution_id=execution_id, sender=sender, id=f"replay-{next(self._msg_ids)}"
        )

    def step(self, messages: list[Message], now: datetime, *, implied_resume: bool = True) -> list[Event]:
        """One recorded episode through the engine; returns the events it appended for that execution.

        `implied_resume`: if the current run is suspended but the recording applies events here, the
        instance was resumed if the recording goes on scheduling work and records no later ExecutionResumed
        (histories written by older devhost engines lack it), so resume it first. The formats turn it off
        otherwise: events arriving while suspended are in history, on Azure and devhost alike (A13).
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
        for text in result.warnings:
            self.warn(text)
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
                f"{describe.did(self.end_event(), False)}, but the recording continues with {describe.delivered(ev)}"
            )

    def _check_applied(self, result: StepResult, k: int) -> None:
        for msg in result.deferred:
            ev = msg.event
            t = ev["EventType"]
            if t in COMPLETION_ID_FIELD:
                seq = ev[COMPLETION_ID_FIELD[t]]
                raise Diverged(
                    f"episode {k}, sequence number {seq}: the recording delivered {describe.delivered(ev)}, "
                    f"but the current code never scheduled sequence number {seq}"
                )
            raise Diverged(
                f"episode {k}: the current code has no pending call for the recorded {describe.delivered(ev)}"
            )
        for msg, reason in result.dropped:
            raise Diverged(
                f"episode {k}: the current code could not take the recorded {describe.delivered(msg.event)} ({reason})"
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
