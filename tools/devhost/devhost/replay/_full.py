"""Replaying a full recording (DTFx events with EventIds and OrchestratorStarted episodes): exact.

Episodes are delimited by OrchestratorStarted, whose timestamps become the step's `now`, and every
scheduling event is compared by type, name and sequence number, plus the final outcome
(ExecutionCompleted / ContinueAsNew). fork.py reuses this replayer to rebuild the prefix it keeps.
"""

from __future__ import annotations

from .. import describe
from .. import history as h
from ..history import Event, EventType
from ..model import Message
from ..orchestration import Severity, event_mismatch
from ._base import Replayer
from ._compare import INCOMING_TYPES, OUTPUT_TYPES, request_of, same_event, seq_of
from ._report import Diverged


class FullReplayer(Replayer):
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
        implied = _implied_resumes(episodes)
        # Where each recorded sequence number was scheduled: the current code may schedule it earlier.
        self._recorded_in = {
            seq: (number, ev)
            for number, ep in enumerate(episodes, start=1)
            for ev in ep
            if ev["EventType"] in OUTPUT_TYPES and (seq := seq_of(ev)) is not None
        }
        self._early: set[int] = set()
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
            produced = [
                ev
                for ev in self.step(messages, now, implied_resume=implied[number - 1])
                if ev["EventType"] in OUTPUT_TYPES
            ]
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
                return request_of(ev).get("id")
        return None

    def _compare(self, k: int, recorded: list[Event], produced: list[Event]) -> None:
        recorded, produced = self._moved_earlier(k, recorded, produced)
        for i in range(max(len(recorded), len(produced))):
            rec = recorded[i] if i < len(recorded) else None
            new = produced[i] if i < len(produced) else None
            if rec is not None and new is not None and same_event(rec, new):
                continue
            if (
                rec is not None
                and new is not None
                and seq_of(rec) == seq_of(new)
                and event_mismatch(rec, new) is Severity.WARNING
            ):
                text = (
                    f"episode {k}, sequence number {seq_of(rec)}: the recording {describe.did(rec, True)}, "
                    f"the current code {describe.did(new, True)} (Azure does not detect this)"
                )
                self.warn(text)
                continue
            seq = seq_of(rec) if seq_of(rec) is not None else seq_of(new)
            where = f"episode {k}" + (f", sequence number {seq}" if seq is not None else "")
            raise Diverged(
                f"{where}: the recording {describe.did(rec, True)}, but the current code {describe.did(new, True)}"
            )

    def _moved_earlier(self, k: int, recorded: list[Event], produced: list[Event]) -> tuple[list[Event], list[Event]]:
        """Take out what the current code schedules in an earlier episode than the recording did (a wait moved
        later or removed): DTFx matches a recorded event with the action of its sequence number whenever the
        action came first (TaskOrchestrationContext.cs 277-412), so Azure does not see this; it is a warning.
        The other way round (the code reaches the action only in a later episode, e.g. a wait moved before it)
        DTFx does see: the recorded event finds no action yet ("hasn't (yet?) scheduled this task"), so it stays
        a divergence."""
        kept: list[Event] = []
        for new in produced:
            seq = seq_of(new)
            where = self._recorded_in.get(seq) if seq is not None else None
            if where is not None and where[0] > k and _matches_well_enough(where[1], new):
                self._early.add(seq)  # type: ignore[arg-type]
                text = (
                    f"episode {k}, sequence number {seq}: the current code {describe.did(new, True)} already "
                    f"here, the recording in episode {where[0]} (a wait moved or removed; Azure does not "
                    "detect this)"
                )
                self.warn(text)
                continue
            kept.append(new)
        return [rec for rec in recorded if seq_of(rec) not in self._early], kept


def _matches_well_enough(rec: Event, new: Event) -> bool:
    return same_event(rec, new) or (seq_of(rec) == seq_of(new) and event_mismatch(rec, new) is Severity.WARNING)


def _implied_resumes(episodes: list[list[Event]]) -> list[bool]:
    """Per episode: may the replay assume a resume that the recording lacks (see `Replayer.step`)?

    Events that arrive while suspended are in history on Azure and on devhost (A13), and the code schedules
    nothing for them until ExecutionResumed. So a suspended run that applies events here was resumed only in
    a recording with no later ExecutionResumed (written by older devhost engines, which did not record it)
    whose work goes on from here: this episode or a later one schedules or ends something."""
    out: list[bool] = []
    resumes_after = 0
    outputs_from_here = False
    for ep in reversed(episodes):
        types = {ev["EventType"] for ev in ep}
        outputs_from_here = outputs_from_here or bool(types & OUTPUT_TYPES)
        out.append(resumes_after == 0 and outputs_from_here)
        resumes_after += EventType.EXECUTION_RESUMED in types
    return out[::-1]


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
            rid = request_of(ev).get("id")
            if rid:
                out[str(rid)] = (int(ev.get("EventId", -1)), str(ev.get("InstanceId") or ""))
    return out
