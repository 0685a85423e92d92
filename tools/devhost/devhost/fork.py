"""Fork: start a NEW instance from a prefix of an existing instance's history (devhost-only).

Why: when a run fails late (a buggy activity, a bad target), re-running it from the start repeats
every slow or side-effecting step before the failure. A fork keeps the recorded episodes up to a
chosen point and lets the CURRENT code carry on from there. The Azure host has only rewind and
restart; this is a local debugging aid and has no Azure counterpart.

Semantics (kept deliberately simple, and honest about what it cannot do):

* The cut is at an episode boundary. `at_event` is an index into the full-fidelity history (the
  store's events, see `history_view.export_instance`); the fork keeps every episode that *ended
  before* the episode holding that event. That episode and everything after it are dropped and will
  be redone by the current code. Picking an event of the first episode is a restart under a new id.
* The kept episodes are replayed through the engine's own pure step (`process_orchestration`, via the
  replay checker's full-format replayer) under the new instance id. That rebuilds the engine
  bookkeeping (`next_id`, `ids`, retries, `played`) exactly, and proves the current code still
  replays the prefix: if it does not, the fork is refused with the divergence (HTTP 409).
* What was still pending at the cut is sent again: activities scheduled but not completed run again
  (work messages); timers not fired are re-armed at their recorded FireAt (already past: they fire at
  once); sub-orchestrations not finished are started again from their beginning, under the instance
  id the current code gives them; entity calls awaiting a response are re-sent. External events the
  prefix waits for are not invented: raise them on the fork.
* Not forked: entity state and anything an activity did outside the orchestration (shared with the
  original), signals and completed entity calls (not repeated), and the parent link (a fork is a
  top-level instance, so it never reports to the original's parent).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from . import history as h
from .client import TaskHubClient, validate_instance_id
from .entity_messages import parse_request
from .history import COMPLETION_ID_FIELD, Event, EventType
from .history_view import event_type_of
from .index import AppIndex
from .model import Instance, Message, new_guid
from .orchestration import EngineOptions, child_start_message
from .replay._full import FullReplayer
from .replay._recording import FULL, Recording
from .replay._report import Diverged
from .store.base import ConcurrencyError
from .versioning import version_of


class ForkError(ValueError):
    """The fork cannot be built as asked; `status` is the HTTP status the dashboard route answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Fork:
    """The new instance (not stored yet) and the messages to send once it is."""

    instance: Instance | None  # None: the cut is before the first episode, so start afresh
    messages: list[Message] = field(default_factory=list)
    cut: int = 0  # how many of the original's events were kept
    episodes: int = 0  # how many episodes were kept


def cut_index(history: list[Event], at_event: int) -> int:
    """The start of the episode holding `at_event`: the index of the OrchestratorStarted at or before it."""
    if not 0 <= at_event < len(history):
        raise ForkError(f"atEvent must be between 0 and {len(history) - 1}, not {at_event}.")
    for i in range(at_event, -1, -1):
        if event_type_of(history[i]) == EventType.ORCHESTRATOR_STARTED:
            return i
    return 0


def build_fork(
    app: AppIndex,
    original: Instance,
    at_event: int,
    new_instance_id: str,
    now_text: str,
    options: EngineOptions | None = None,
) -> Fork:
    """Build the fork of `original` (loaded with its history) at `at_event`. Pure: no I/O.

    `now_text` (an ISO timestamp) becomes the fork's created time. Raises ForkError."""
    history = [dict(ev, EventType=event_type_of(ev)) for ev in original.history]
    cut = cut_index(history, at_event)
    prefix = history[:cut]
    started = next((ev for ev in prefix if ev["EventType"] == EventType.EXECUTION_STARTED), None)
    if started is None:
        return Fork(None)
    execution_id = new_guid()
    rewritten = []
    for ev in prefix:
        if ev["EventType"] == EventType.EXECUTION_STARTED:
            ev = {
                **ev,
                "OrchestrationInstance": {"InstanceId": new_instance_id, "ExecutionId": execution_id},
                "ParentInstance": None,
            }
        rewritten.append(ev)
    rec = Recording(
        format=FULL,
        events=[{**ev, "IsPlayed": False} for ev in rewritten],
        instance_id=new_instance_id,
        name=original.name,
        execution_id=execution_id,
    )
    replayer = FullReplayer(app, options or EngineOptions(), rec)
    try:
        replayer.run()
    except Diverged as exc:
        raise ForkError(f"The current code does not replay the history up to the cut: {exc}", 409) from None
    inst = replayer.inst
    if inst is None:
        raise ForkError("The history before the cut has no ExecutionStarted.")
    if inst.runtime_status.is_terminal:
        raise ForkError(
            f"Up to the cut the current code already ends the orchestration "
            f"({inst.runtime_status.value}); pick an earlier event.",
            409,
        )
    _keep_finished_children(inst, prefix)
    now = h.parse_ts(now_text)
    inst.created_time = inst.last_updated_time = now
    inst.parent_instance_id = None
    inst.etag = None
    inst.generation = 0
    episodes = sum(1 for ev in prefix if ev["EventType"] == EventType.ORCHESTRATOR_STARTED)
    return Fork(inst, pending_messages(inst), cut, episodes)


def _keep_finished_children(inst: Instance, prefix: list[Event]) -> None:
    """Sub-orchestrations that finished before the cut ran under the original's child ids: link to those.

    The replay ran the current code under the new instance id, so it may name children differently
    (e.g. `{instanceId}:wave:1`); those instances never ran. The engine matches sub-orchestrations by
    name, not id, so restoring the recorded ids is safe. Unfinished ones keep the new id: they are started
    again under it (see `pending_messages`)."""
    recorded = {
        ev.get("EventId"): ev.get("InstanceId")
        for ev in prefix
        if ev["EventType"] == EventType.SUB_ORCHESTRATION_CREATED
    }
    finished = {
        ev.get("TaskScheduledId")
        for ev in inst.history
        if ev["EventType"] in (EventType.SUB_ORCHESTRATION_COMPLETED, EventType.SUB_ORCHESTRATION_FAILED)
    }
    for i, ev in enumerate(inst.history):
        seq = ev.get("EventId")
        if ev["EventType"] == EventType.SUB_ORCHESTRATION_CREATED and seq in finished and recorded.get(seq):
            inst.history[i] = {**ev, "InstanceId": recorded[seq]}


def pending_messages(inst: Instance) -> list[Message]:
    """Messages that make the fork carry on: whatever its history scheduled and never got back."""
    hist = inst.history
    done = {(t, ev[COMPLETION_ID_FIELD[t]]) for ev in hist if (t := ev["EventType"]) in COMPLETION_ID_FIELD}
    responses = {ev.get("Name") for ev in hist if ev["EventType"] == EventType.EVENT_RAISED}
    iid, exec_id = inst.instance_id, inst.execution_id
    out: list[Message] = []
    for ev in hist:
        t, seq = ev["EventType"], ev.get("EventId")
        if t == EventType.TASK_SCHEDULED:
            if (EventType.TASK_COMPLETED, seq) not in done and (EventType.TASK_FAILED, seq) not in done:
                out.append(Message(iid, ev, queue="work", execution_id=exec_id))
        elif t == EventType.TIMER_CREATED:
            if (EventType.TIMER_FIRED, seq) not in done:
                fire_at = h.parse_ts(ev["FireAt"])
                out.append(
                    Message(
                        iid,
                        h.timer_fired(fire_at, int(ev["EventId"]), fire_at),
                        execution_id=exec_id,
                        visible_at=fire_at,
                        sender=iid,
                    )
                )
        elif t == EventType.SUB_ORCHESTRATION_CREATED:
            if (EventType.SUB_ORCHESTRATION_COMPLETED, seq) not in done and (
                EventType.SUB_ORCHESTRATION_FAILED,
                seq,
            ) not in done:
                out.append(_child_start(inst, ev))
        elif t == EventType.EVENT_SENT and ev.get("Input"):
            request = parse_request(ev["Input"])
            if request is not None and not request.get("signal") and request.get("id") not in responses:
                out.append(
                    Message(
                        str(ev.get("InstanceId") or ""),
                        h.event_raised(h.parse_ts(ev["Timestamp"]), "op", ev["Input"]),
                        sender=iid,
                    )
                )
    return out


def _child_start(inst: Instance, ev: Event) -> Message:
    """The ExecutionStarted the engine sends for a sub-orchestration (the engine's own builder)."""
    input_text = ev.get("Input")
    return child_start_message(
        inst,
        int(ev["EventId"]),
        str(ev.get("InstanceId") or ""),
        str(ev.get("Name") or ""),
        input_text,
        ev.get("Version") or None,
        h.parse_ts(ev["Timestamp"]),
    )


async def fork_instance(
    client: TaskHubClient, instance_id: str, at_event: int, new_instance_id: str | None = None
) -> tuple[str, Fork]:
    """Load `instance_id`, build its fork at `at_event`, store it, then send its pending messages.

    The record is created before its messages are sent, so no completion can arrive for an instance
    that does not exist yet. Raises ForkError (or the client's errors for a bad or taken id)."""
    original = await client.get(instance_id, history=True)
    if original is None or original.is_entity:
        raise ForkError(f"No orchestration instance with ID '{instance_id}' was found.", 404)
    new_id = new_instance_id or new_guid()
    validate_instance_id(new_id)
    if await client.store.load(new_id, history=False) is not None:
        raise ForkError(f"An instance with ID '{new_id}' already exists; pick another newInstanceId.", 409)
    now_text = h.format_ts(client.store.clock.now())
    # The replay runs user code: on a worker thread, as every orchestrator step (dispatcher.py), never on this loop.
    fork = await asyncio.get_running_loop().run_in_executor(
        None, build_fork, client.app, original, at_event, new_id, now_text
    )
    if fork.instance is None:
        await client.start(original.name, original.input, new_id, version=version_of(original.history))
        return new_id, fork
    try:
        await client.store.create(fork.instance)
    except ConcurrencyError:
        raise ForkError(f"An instance with ID '{new_id}' was created meanwhile.", 409) from None
    if fork.messages:
        await client.store.enqueue(fork.messages)
    return new_id, fork
