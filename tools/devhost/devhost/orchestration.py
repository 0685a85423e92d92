"""The pure orchestration step: (instance, delivered messages, now) -> new history + outbound work.

No I/O happens here. The real SDK does the replay (we build the context JSON, call the
registered handler, read the state JSON); this module does what the Durable extension
and DTFx do around it: number new actions, record scheduling events, emulate retries
(§2.7), detect nondeterminism (§2.8), drop duplicate or stale messages, defer
out-of-order ones, buffer while suspended, terminate, and continue-as-new.
"""

from __future__ import annotations

import enum
import json
import os
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import describe, logfilter, sdk_replay
from . import history as h
from .actions import (
    ACTIVITY_TYPES,
    COMPOUND,
    ENTITY_TYPES,
    HTTP_ACTIVITY_NAME,
    SUB_ORCHESTRATOR_TYPES,
    Action,
    ActionType,
    action_type,
    flatten,
)
from .entity_messages import request_id, request_op
from .history import Event, EventType, RuntimeStatus
from .index import AppIndex
from .model import EngineState, Instance, Message, RetryKind, RetryState, is_entity_id, new_guid
from .versioning import MISMATCH_MESSAGE, FailureStrategy, Versioning, version_of

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
ENTITY_REQUEST_NS = uuid.UUID("a6a9c3f4-1a63-4c1e-9d3c-6b1f5e0d2c11")
# The extension caps each retry delay at 6 days unless told otherwise (RetryOptions.cs 18, 31).
MAX_RETRY_INTERVAL_MS = 6 * 24 * 3600 * 1000
# SetCustomStatus rejects more than 16 KB (DurableOrchestrationContext.cs 225-229).
MAX_CUSTOM_STATUS_KB = 16
# Tasks DTFx keeps in its open list until they finish (TaskOrchestrationContext.cs 73).
OPEN_TASK_TYPES = frozenset({EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED, EventType.TIMER_CREATED})
# A top-level start that does not match its instance's row yet is deferred this many times at
# most (DTFx: dequeue count 10), in case its client failed before writing the Pending row.
_MAX_START_DEFERRALS = 10
CONTROL_EVENTS = frozenset(
    {
        EventType.EXECUTION_TERMINATED,
        EventType.EXECUTION_SUSPENDED,
        EventType.EXECUTION_RESUMED,
        EventType.EXECUTION_REWOUND,
    }
)


@dataclass
class EngineOptions:
    """Knobs that mirror the extension's defaults.

    The timer durations are advertised to the SDK as the Azure Storage provider does
    (6-day maximum, 3-day slices), so long timers produce the same history as in Azure.
    """

    max_short_timer: timedelta | None = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)
    new_id: Callable[[], str] = new_guid
    # host.json defaultVersion and the version-match settings (devhost.versioning); None: no versioning.
    versioning: Versioning | None = None
    # host.json maxOrchestrationActions (DurableTaskOptions.cs 183): numbered actions one execution may take.
    max_actions: int = 100_000
    # Decoded history per instance, so an episode decodes only new events (devhost.sdk_replay);
    # None: build the context JSON each time, as the Functions host does.
    replay_cache: sdk_replay.ReplayCache | None = field(default_factory=sdk_replay.ReplayCache)
    # "full": every episode replays the whole history through the SDK (Azure's behaviour). "incremental"
    # (tests, opt-in for `devhost start`): a running instance's SDK executor is kept and fed only new
    # events, with a full replay whenever history doubled and at the end (devhost.sdk_replay.Session).
    # Default from DEVHOST_REPLAY. Needs replay_cache.
    replay: str = field(default_factory=lambda: os.environ.get("DEVHOST_REPLAY", "full"))


@dataclass
class StepResult:
    instance: Instance | None
    outbound: list[Message] = field(default_factory=list)
    # Messages whose causing event is not in history yet: leave them for later.
    deferred: list[Message] = field(default_factory=list)
    dropped: list[tuple[Message, str]] = field(default_factory=list)
    # Index of the first history event the store has not persisted; 0 after a reset.
    new_events_from: int = 0
    history_reset: bool = False
    episodes: int = 0
    # (instance_id, name, status) for each execution that ended in this step.
    finished: list[tuple[str, str, RuntimeStatus]] = field(default_factory=list)
    # The flattened actions the SDK returned in the step's last episode (read by tools such
    # as the replay checker, which needs e.g. the names of pending external-event waits).
    actions: list[Action] = field(default_factory=list)
    # Warnings about the user's code seen in this step (open tasks at the end, differences only
    # devhost's stricter replay check sees), and those this instance has not had before: the host
    # logs these (once per instance; the step itself does no I/O).
    warnings: list[str] = field(default_factory=list)
    new_warnings: list[str] = field(default_factory=list)
    # Set when the version check rejected the work item (all of it is in `deferred`): why, for the host's
    # log, which also backs off as DTFx's abandon does.
    version_rejected: str | None = None


class _Ended(Exception):
    """Raised inside an episode once the execution reached a terminal state."""


def child_start_message(
    inst: Instance, seq: int, child: str, name: str, input_text: str | None, version: str | None, now: datetime
) -> Message:
    """The ExecutionStarted a parent sends for its sub-orchestration `seq` (the engine and fork share it).

    The child's execution id is derived, not random, so a start re-sent after a crash is recognised
    as a duplicate; the input is encoded once more, as the extension does."""
    parent = {
        "OrchestrationInstance": {"InstanceId": inst.instance_id, "ExecutionId": inst.execution_id},
        "Name": inst.name,
        "Version": version_of(inst.history),
        "TaskScheduleId": seq,
    }
    child_exec = uuid.uuid5(ENTITY_REQUEST_NS, f"{inst.instance_id}|{inst.execution_id}|{seq}|child").hex
    start = h.execution_started(
        now,
        instance_id=child,
        execution_id=child_exec,
        name=name,
        input_text=json.dumps(input_text) if input_text is not None else None,
        parent=parent,
        version=version,
    )
    return Message(child, start, execution_id=child_exec, sender=inst.instance_id)


class _ActionRefused(Exception):
    """The extension refuses an action while replaying it (an unknown function, a bad child id: the shim's
    InvokeAPIFromAction throws, OutOfProcOrchestrationShim.cs 203). The orchestration fails with the message,
    but like any failure only once no task is open; the action takes no sequence number."""


def _timespan(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}"


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def entity_request_id(instance_id: str, execution_id: str, seq: int) -> str:
    """Deterministic per (instance, execution, sequence number), so a re-run episode after a
    crash produces the same request id and the duplicate response is recognised."""
    return str(uuid.uuid5(ENTITY_REQUEST_NS, f"{instance_id}|{execution_id}|{seq}"))


class _HistoryIndex(sdk_replay.HistoryView):
    """What the current execution's history already holds, for filtering messages (kept per instance
    by the replay cache and extended with new events: `ReplayCache.view`)."""

    def __init__(self, events: list[Event] = ()) -> None:  # type: ignore[assignment]
        self.scheduled: set[int] = set()
        self.completed: set[int] = set()
        self.request_ids: set[str] = set()
        self.responses: set[str] = set()
        for ev in events:
            self.add(ev)

    def add(self, ev: Event) -> None:
        t = ev["EventType"]
        if t in h.SCHEDULING_TYPES:
            self.scheduled.add(ev["EventId"])
            if t == EventType.EVENT_SENT and ev.get("Input"):
                rid = request_id(ev["Input"])
                if rid:
                    self.request_ids.add(rid)
        elif t in h.COMPLETION_ID_FIELD:
            self.completed.add(ev[h.COMPLETION_ID_FIELD[t]])
        elif t == EventType.EVENT_RAISED:
            self.responses.add(ev.get("Name") or "")


class OrchestrationStep:
    """Runs one work item for one orchestration instance. Create one per work item."""

    def __init__(self, app: AppIndex, instance: Instance | None, now: datetime, options: EngineOptions) -> None:
        self.app = app
        self._inst = instance
        self.now = now
        self.opts = options
        self.result = StepResult(instance=instance, new_events_from=len(instance.history) if instance else 0)
        # Set by a continue-as-new: the new execution's first episode keeps the custom status unless
        # it sets one (TaskOrchestrationDispatcher.cs 556-557, 605).
        self._carry_status = False
        self._start_taken = False  # an ExecutionStarted was accepted in this work item
        # Scheduling events by EventId for the nondeterminism check, when the replay cache has them.
        self._recorded: dict[int, Event] | None = None
        self._memo: _PlanMemo | None = None  # this episode's plan as kept in the replay cache (`_plan`)

    @property
    def inst(self) -> Instance:
        """The instance being processed; only None before an ExecutionStarted created it."""
        assert self._inst is not None
        return self._inst

    # ----------------------------------------------------------------- entry
    def run(self, messages: list[Message]) -> StepResult:
        if self._version_rejects(messages):
            return self.result
        queue = self._accept(messages)
        if self._inst is None:
            return self.result
        while queue:
            inst = self.inst
            status = inst.runtime_status
            if queue[0]["EventType"] == EventType.EXECUTION_REWOUND:
                first = queue.pop(0)
                if status == RuntimeStatus.FAILED:
                    queue = self._episode(self._take_batch(queue, [self._rewind(first)]), queue)
                else:
                    self.result.dropped.append((Message(inst.instance_id, first), f"cannot rewind: {status.value}"))
                continue
            if status.is_terminal:
                for ev in queue:
                    self.result.dropped.append((Message(inst.instance_id, ev), f"instance is {status.value}"))
                break
            first = queue[0]
            t = first["EventType"]
            if t in CONTROL_EVENTS and not inst.history:
                # IsExecutableInstance (AzureStorageOrchestrationService.cs 1038-1060): no ExecutionStarted
                # yet, so the message is discarded.
                queue.pop(0)
                self.result.dropped.append((Message(inst.instance_id, first), "the instance has not started"))
                continue
            if t == EventType.EXECUTION_TERMINATED:
                queue.pop(0)
                self._terminate(first)
                continue
            if t == EventType.EXECUTION_SUSPENDED:
                queue.pop(0)
                if status in (RuntimeStatus.RUNNING, RuntimeStatus.PENDING):
                    self._bookkeeping_episode([first])
                    inst.runtime_status = RuntimeStatus.SUSPENDED
                    inst.output = first.get("Reason")
                continue
            if t == EventType.EXECUTION_RESUMED:
                queue.pop(0)
                if status == RuntimeStatus.SUSPENDED:
                    inst.runtime_status = RuntimeStatus.RUNNING
                    inst.output = first.get("Reason")
                    # ExecutionResumed opens the episode that applies what was held while suspended.
                    queue = [*inst.buffered, *queue]
                    inst.buffered = []
                    batch = self._take_batch(queue, [first])
                    queue = self._episode(batch, queue)
                continue
            if (
                not inst.history
                and t != EventType.EXECUTION_STARTED
                and not any(ev["EventType"] == EventType.EXECUTION_STARTED for ev in queue)
            ):
                # IsExecutableInstance (AzureStorageOrchestrationService.cs 1038-1060, 782-830): a work item
                # for an orchestration without ExecutionStarted, in its history or among its messages, is
                # discarded whole; the instance is not created (only entities auto-start).
                queue.pop(0)
                self.result.dropped.append((Message(inst.instance_id, first), "the instance has not started"))
                continue
            if status == RuntimeStatus.SUSPENDED and not self._is_retry_event(first):
                batch = []
                while queue and queue[0]["EventType"] not in CONTROL_EVENTS and not self._is_retry_event(queue[0]):
                    batch.append(queue.pop(0))
                self._suspended_episode(batch)
                continue
            if status == RuntimeStatus.SUSPENDED or (not inst.history and t != EventType.EXECUTION_STARTED):
                # A retry's own event while suspended (its sequence numbers are taken when it applies), or
                # started later in this work item: hold it until it can apply.
                inst.buffered.append(queue.pop(0))
                continue
            if t == EventType.EXECUTION_STARTED and inst.buffered:
                queue = [first, *inst.buffered, *queue[1:]]
                inst.buffered = []
            batch = self._take_batch(queue, [])
            queue = self._episode(batch, queue)
        if self._inst is not None:
            self.inst.last_updated_time = max(self.inst.last_updated_time, self.now)
        return self.result

    def _version_rejects(self, messages: list[Message]) -> bool:
        """versionFailureStrategy Reject: leave the work item for a host whose version matches, as DTFx
        abandons it (TaskOrchestrationDispatcher.cs 416-432). See devhost.versioning."""
        inst = self._inst
        if self.opts.versioning is None or (inst is not None and inst.runtime_status.is_terminal):
            return False
        hist = inst.history if inst is not None and inst.history else [m.event for m in messages]
        versioning = self.opts.versioning
        version = version_of(hist)
        if versioning.mismatch(version) != FailureStrategy.REJECT:
            return False
        self.result.deferred.extend(messages)
        name = (
            inst.name
            if inst is not None
            else next(
                (m.event.get("Name") for m in messages if m.event["EventType"] == EventType.EXECUTION_STARTED), ""
            )
        )
        self.result.version_rejected = (
            f"orchestration {name} ({messages[0].instance_id if messages else ''}) has version {version!r}, which "
            f"this host does not run (defaultVersion {versioning.default_version!r}, versionMatchStrategy "
            f"{versioning.match.value}); its work is left for a host that does (versionFailureStrategy Reject) "
            "and tried again with back-off"
        )
        return True

    def _rewind(self, ev: Event) -> Event:
        """Undo a failure, as DTFx's rewind does (§7.6): the failed ExecutionCompleted, every
        TaskFailed / SubOrchestrationInstanceFailed and the scheduling event each refers to
        become GenericEvents the SDK ignores; the replay then yields those tasks again and
        they are scheduled again under their old sequence numbers. Failed children are
        rewound too. Returns the event that opens the episode."""
        inst = self.inst
        failed = {
            e["TaskScheduledId"]
            for e in inst.history
            if e["EventType"] in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED)
        }
        again: list[int] = []
        for i, e in enumerate(inst.history):
            t = e["EventType"]
            undo = t in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED) or (
                t == EventType.EXECUTION_COMPLETED
            )
            if t in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED) and e["EventId"] in failed:
                undo = True
                again.append(e["EventId"])
                if t == EventType.SUB_ORCHESTRATION_CREATED:
                    child = e.get("InstanceId") or ""
                    self.result.outbound.append(
                        Message(child, h.execution_rewound(self.now, ev.get("Reason")), sender=inst.instance_id)
                    )
            if undo:
                inst.history[i] = h.rewound(e)
        inst.engine.rewound = sorted(set(inst.engine.rewound) | set(again))
        inst.engine.retries.clear()
        inst.runtime_status = RuntimeStatus.RUNNING
        inst.output = None
        inst.completed_time = None
        return ev

    def _take_batch(self, queue: list[Event], batch: list[Event]) -> list[Event]:
        """Move events from the front of `queue` onto `batch`, up to the next control event."""
        while queue and queue[0]["EventType"] not in CONTROL_EVENTS:
            ev = queue.pop(0)
            batch.append(ev)
            if self._is_retry_event(ev):
                # The SDK takes retry sequence numbers while processing this event;
                # keeping it last makes their order relative to new actions known (§2.6.1).
                break
        return batch

    # ------------------------------------------------------------ admission
    def _accept(self, messages: list[Message]) -> list[Event]:
        """Filter delivered messages into the events to apply, in order."""
        accepted: list[Event] = []
        index: _HistoryIndex | None = None  # what history holds (read-only: it may be the cache's)
        batch = _HistoryIndex()  # what this batch accepted so far (a start adds nothing to it)
        for msg in messages:
            ev = msg.event
            t = ev["EventType"]
            if t == EventType.EXECUTION_STARTED:
                accepted_start = self._accept_start(msg)
                if accepted_start is not None:
                    accepted.append(accepted_start)
                    index = None  # a new execution: its history
                continue
            inst = self._inst
            if inst is None:
                self.result.dropped.append((msg, "no such instance"))
                continue
            if msg.execution_id and msg.execution_id != inst.execution_id:
                self.result.dropped.append((msg, f"for execution {msg.execution_id}, current is {inst.execution_id}"))
                continue
            if index is None:
                index = self._history_index()
            if t in h.COMPLETION_ID_FIELD:
                tid = ev[h.COMPLETION_ID_FIELD[t]]
                if tid in index.completed or tid in batch.completed:
                    self.result.dropped.append((msg, f"duplicate completion for task {tid}"))
                    continue
                if tid not in index.scheduled and tid not in batch.scheduled:
                    self.result.deferred.append(msg)
                    continue
            elif t == EventType.EVENT_RAISED and msg.sender and is_entity_id(msg.sender):
                name = ev.get("Name") or ""
                if name in index.responses or name in batch.responses:
                    self.result.dropped.append((msg, "duplicate entity response"))
                    continue
                if name not in index.request_ids and name not in batch.request_ids:
                    self.result.deferred.append(msg)
                    continue
            else:
                seen = inst.engine.msgs
                if msg.id in seen:
                    self.result.dropped.append((msg, "message already applied"))
                    continue
                seen.append(msg.id)
                del seen[:-200]
            batch.add(ev)
            accepted.append(ev)
        return accepted

    def _history_index(self) -> _HistoryIndex:
        cache = self.opts.replay_cache
        if cache is None:
            return _HistoryIndex(self.inst.history)
        return cache.view(self.inst.instance_id, self.inst.history, _HistoryIndex)

    def _accept_start(self, msg: Message) -> Event | None:
        """Exactly one start per instance id, as DTFx's `DedupeExecutionStartedMessagesAsync`
        (DurableTask.AzureStorage/OrchestrationSessionManager.cs): clients send the start message
        before they write the Pending row, so a top-level start runs only if it matches that row
        (or no row exists yet: then the checkpoint, which must create the row, decides); at most
        one start per batch; a start older than a finished instance never restarts it."""
        ev = msg.event
        inst = self._inst
        oi = ev.get("OrchestrationInstance") or {}
        execution_id = oi.get("ExecutionId") or self.opts.new_id()
        if self._start_taken:
            self.result.dropped.append((msg, "another ExecutionStarted was accepted in this batch"))
            return None
        if inst is not None and inst.execution_id == execution_id and inst.history:
            self.result.dropped.append((msg, "duplicate ExecutionStarted"))
            return None
        if inst is not None and not ev.get("ParentInstance") and inst.execution_id != execution_id:
            generation = int(ev.get("Generation") or 0)
            if not inst.history and inst.runtime_status == RuntimeStatus.PENDING:
                # Another client's start won the Pending row: this one never runs.
                self.result.dropped.append(
                    (msg, f"start of execution {execution_id} lost to the Pending execution {inst.execution_id}")
                )
                return None
            if inst.runtime_status.is_terminal and inst.history:
                if generation <= inst.generation or msg.dequeue_count >= _MAX_START_DEFERRALS:
                    self.result.dropped.append(
                        (
                            msg,
                            f"stale ExecutionStarted (generation {generation}) for an "
                            f"instance that is already {inst.runtime_status.value}",
                        )
                    )
                    return None
                # A restart whose client has not written its Pending row yet: wait for the row.
                self.result.deferred.append(msg)
                return None
        if (
            inst is not None
            and inst.execution_id != execution_id
            and not inst.runtime_status.is_terminal
            and inst.history
        ):
            reason = f"An orchestration with instance id '{inst.instance_id}' is already {inst.runtime_status.value}."
            self.result.dropped.append((msg, reason))
            parent = ev.get("ParentInstance")
            if parent:
                self._notify_parent(parent, ok=False, result=reason, details=None)
            return None
        name = ev.get("Name") or ""
        created = h.parse_ts(ev["Timestamp"])
        parent = ev.get("ParentInstance") or None
        fresh = Instance(
            instance_id=msg.instance_id,
            name=name,
            runtime_status=RuntimeStatus.PENDING,
            execution_id=execution_id,
            created_time=created,
            last_updated_time=self.now,
            input=ev.get("Input"),
            parent_instance_id=((parent or {}).get("OrchestrationInstance") or {}).get("InstanceId"),
            generation=int(ev.get("Generation") or 0),
        )
        if inst is not None:
            fresh.etag = inst.etag
            if inst.execution_id == execution_id:  # created by a client, events may wait for it
                fresh.created_time = inst.created_time
                fresh.buffered = inst.buffered
        self._inst = self.result.instance = fresh
        self._start_taken = True
        self.result.history_reset = True
        self.result.new_events_from = 0
        return ev

    # -------------------------------------------------------------- episodes
    def _is_retry_event(self, ev: Event) -> bool:
        retries = self._inst.engine.retries if self._inst else None
        if not retries:
            return False
        t = ev["EventType"]
        if t in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
            tid = ev["TaskScheduledId"]
            return any(r.current == tid and r.timer is None for r in retries.values())
        if t == EventType.TIMER_FIRED:
            return any(r.timer == ev["TimerId"] for r in retries.values())
        return False

    def _mark_played(self) -> None:
        inst = self.inst
        hist = inst.history
        start = inst.engine.played
        for i in range(start, len(hist)):
            ev = hist[i]
            if not ev["IsPlayed"] and ev["EventType"] != EventType.ORCHESTRATOR_STARTED:
                hist[i] = {**ev, "IsPlayed": True}
        inst.engine.played = len(hist)

    def _open_episode(self, events: list[Event]) -> datetime:
        """Start an episode in history: earlier events count as played, then OrchestratorStarted and
        the episode's events. Its start time."""
        self._mark_played()
        episode_now = self._episode_time()
        hist = self.inst.history
        hist.append(h.orchestrator_started(episode_now))
        hist.extend(events)
        self.result.episodes += 1
        return episode_now

    def _bookkeeping_episode(self, events: list[Event]) -> None:
        """An episode that needs no orchestrator call (suspend): keep the OS/OC framing."""
        self._open_episode(events)
        self.inst.history.append(h.orchestrator_completed(self.now))

    def _suspended_episode(self, batch: list[Event]) -> None:
        """Events arriving while suspended, as Azure handles them: DTFx adds them to history and the extension
        still calls the function with that history (TaskOrchestrationShim.cs 139-150 invokes it while replaying
        ExecutionStarted, before the suspension is replayed); the SDK ignores ExecutionSuspended, so the code
        runs past its waits and its custom status and logs update. But DTFx holds the events back from the
        extension while suspended (TaskOrchestrationExecutor.cs 199-204, TaskOrchestrationContext.cs 563-606),
        so the shim's replay of the returned actions stops at them: nothing new is scheduled and the
        orchestration does not end until it is resumed, when the actions are scheduled as usual."""
        inst = self.inst
        episode_now = self._open_episode(batch)
        hist = inst.history
        info = self.app.orchestrator(inst.name)
        if info is not None:
            state, _details = self._invoke(info.handler, episode_now)
            if state is None:  # the SDK failed outside the orchestrator's code: failed as at any time
                return
            custom = state.get("customStatus")
            plan, start = self._plan(state)
            flat = plan.flat
            self.result.actions = list(flat)
            try:
                if custom is not None and "error" not in state:
                    self._check_custom_status_size(custom)
                self._check_determinism(flat, start)
                self._check_reached(plan)
            except _Ended:
                return
            self._remember_checked()
            if custom is not None or not self._carry_status:
                inst.custom_status = None if custom is None else json.dumps(custom)
            self._carry_status = False
        hist.append(h.orchestrator_completed(self.now))

    def _episode_time(self) -> datetime:
        """Episode start time: the step's clock, but never before the previous episode."""
        last = self.inst.engine.last_os
        now = self.now
        if last:
            prev = h.parse_ts(last)
            if prev > now:
                now = prev
        self.inst.engine.last_os = h.format_ts(now)
        return now

    def _episode(self, batch: list[Event], rest: list[Event]) -> list[Event]:
        inst = self.inst
        engine = inst.engine
        episode_now = self._open_episode(batch)
        hist = inst.history
        if inst.runtime_status == RuntimeStatus.PENDING:
            inst.runtime_status = RuntimeStatus.RUNNING
        if len(hist) < 2 or hist[1]["EventType"] != EventType.EXECUTION_STARTED:
            # Only possible for a corrupted hub; fail loudly rather than hand the SDK garbage.
            self._fail("history does not start with ExecutionStarted", None)
            return []

        if self.opts.versioning is not None and self.opts.versioning.mismatch(version_of(hist)) is not None:
            self._fail_version()
            return []
        info = self.app.orchestrator(inst.name)
        if info is None:
            self._fail(
                f"The function '{inst.name}' doesn't exist, is disabled, or is not an orchestrator function.", None
            )
            return []

        state, details = self._invoke(info.handler, episode_now)
        if state is None:
            return []
        custom = state.get("customStatus")
        if custom is not None or not self._carry_status:
            inst.custom_status = None if custom is None else json.dumps(custom)
        self._carry_status = False

        plan, start = self._plan(state)
        flat = plan.flat
        self.result.actions = list(flat)
        error = state.get("error") if "error" in state else None
        done = bool(state.get("isDone")) or "error" in state
        cont = done and error is None and bool(flat) and action_type(flat[-1]) == ActionType.CONTINUE_AS_NEW
        try:
            if custom is not None and "error" not in state:
                self._check_custom_status_size(custom)
            self._check_determinism(flat, start)
            self._check_reached(plan)
            if self.inst.engine.rewound:
                self._reschedule_rewound(flat, episode_now)
            # The shim schedules what the SDK returned before it acts on an error or the output
            # (OutOfProcOrchestrationShim.cs 83-90): a failing episode's signals and tasks are sent.
            self._schedule_new(plan, episode_now)
            self._remember_checked()
            if batch:
                self._advance_retry(batch[-1], episode_now)
        except _ActionRefused as refused:
            state = {**state, "error": str(refused)}
            error, details, done, cont = str(refused), None, True, False
        except _Ended:
            return []

        if done:
            still_open = self._open_tasks(flat)
            if still_open:
                # TaskOrchestrationExecutor.cs 153-172: the execution ends only once no task is open.
                self._warn_open(
                    still_open, "failed" if "error" in state else "continued as new" if cont else "returned"
                )
                hist.append(h.orchestrator_completed(self.now))
                return rest
        if "error" in state:
            self._fail(str(error), details)
            return []
        if cont:
            return self._continue_as_new(plan, rest)
        if done:
            output = state.get("output")
            result = None if output is None else json.dumps(output)
            hist.append(h.execution_completed(self.now, engine.next_id, RuntimeStatus.COMPLETED, result))
            hist.append(h.orchestrator_completed(self.now))
            self._finish(RuntimeStatus.COMPLETED, result)
            if inst.history[1].get("ParentInstance"):
                self._notify_parent(inst.history[1]["ParentInstance"], ok=True, result=result, details=None)
            return []
        hist.append(h.orchestrator_completed(self.now))
        return rest

    def _context(self, history: list[Event]) -> dict[str, Any]:
        inst = self.inst
        started = inst.history[1]
        ctx: dict[str, Any] = {
            "history": history,
            "input": _json_or_none(started.get("Input")),
            "instanceId": inst.instance_id,
            "isReplaying": False,
            "parentInstanceId": inst.parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
        if self.opts.max_short_timer is not None:
            ctx["maximumShortTimerDuration"] = _timespan(self.opts.max_short_timer)
            ctx["longRunningTimerIntervalDuration"] = _timespan(self.opts.long_timer_interval)
        return ctx

    def _call_sdk(self, handler: Callable[[str], str]) -> Callable[[], dict[str, Any]]:
        """The SDK call for this episode, returning its state JSON read back: from cached decoded events
        where possible (devhost.sdk_replay), else with the context JSON as the Functions host sends it."""
        hist = self.inst.history
        cache = self.opts.replay_cache
        fn = sdk_replay.orchestrator_function(handler)
        if cache is None or fn is None or not sdk_replay.can_shortcut(hist):
            self._recorded = None
            text = json.dumps(self._context(hist))
            return lambda: json.loads(handler(text))  # type: ignore[no-any-return]
        iid = self.inst.instance_id
        objects, self._recorded, session = cache.sync(iid, hist)
        context = self._context(hist[:2])
        incremental = self.opts.replay == "incremental" and not self.inst.engine.rewound

        def full() -> dict[str, Any]:
            cache.stats["full"] += 1
            state, fresh = sdk_replay.call_orchestrator(handler, fn, context, objects, resumable=incremental)
            if incremental and fresh is not None:
                cache.keep(iid, fresh)
            return state

        if session is None or not incremental or len(hist) >= 2 * session.full_len:
            return full

        def resume() -> dict[str, Any]:
            assert session is not None
            state = session.resume(objects)
            if state is None:  # completed, failed or continued as new: replay in full (checks the actions)
                return full()
            cache.stats["resumed"] += 1
            cache.keep(iid, session)
            return state

        return resume

    def _invoke(self, handler: Callable[[str], str], now: datetime) -> tuple[dict[str, Any] | None, str | None]:
        """Call the SDK's handler; a raised error carries the state after the marker (§2.1)."""
        call = self._call_sdk(handler)
        try:
            with logfilter.episode():
                return call(), None
        except Exception as exc:  # the SDK reports orchestrator failures by raising
            message = str(exc)
            cause = exc.__cause__ or exc
            details = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            head, marker, tail = message.partition(OUT_OF_PROC_MARKER)
            if marker:
                try:
                    state = json.loads(tail)
                except ValueError:
                    state = None
                if isinstance(state, dict):
                    state.setdefault("error", head)
                    return state, details
            self._fail(message or type(exc).__name__, details)
            return None, None

    def _plan(self, state: dict[str, Any]) -> tuple[_Plan, int]:
        """The state's actions as a plan, and the action position from which they still need the
        nondeterminism check.

        The replay cache keeps the last episode's plan with the instance's decoded history (dropped when
        the history is not an extension of it). When its actions are a prefix of this episode's, equal as
        JSON (compared in C: after an incremental episode they are the same objects; a timer cancelled since
        makes its action differ), the plan is extended with the new actions only, and the numbered positions
        already checked against history (or recorded by devhost from these very actions) are not checked
        again: the check depends only on the action, its sequence number and the recorded event."""
        top = _Plan.top_of(state.get("actions") or [])
        cache = self.opts.replay_cache
        iid = self.inst.instance_id
        kept = cache is not None and self._recorded is not None  # the cache route: it holds this history
        memo = cache.memo(iid) if cache is not None and kept else None
        if isinstance(memo, _PlanMemo):
            n = len(memo.plan.top)
            if n <= len(top) and memo.plan.top == top[:n]:
                memo.plan.top[:n] = top[:n]  # equal, maybe not identical (a full replay): identical next time
                memo.plan.extend(top[n:])
                self._memo = memo
                return memo.plan, min(memo.checked, len(self.inst.engine.ids))
        plan = _Plan()
        plan.extend(top)
        self._memo = _PlanMemo(plan) if kept else None
        if cache is not None and self._memo is not None:
            cache.set_memo(iid, self._memo)
        return plan, 0

    def _remember_checked(self) -> None:
        """After scheduling: the actions numbered so far are checked or recorded (see `_plan`)."""
        if self._memo is not None:
            self._memo.checked = len(self.inst.engine.ids)

    # ------------------------------------------------------- nondeterminism
    def _check_determinism(self, flat: list[Action], start: int = 0) -> None:
        """Compare the replayed actions with what history recorded, as DTFx does, and no stricter.

        DTFx matches each recorded scheduling event with the action that took its sequence number
        (TaskOrchestrationContext.cs 277-412): same kind, and the same name for activities and
        sub-orchestrations; an EventSent only by its Name, "op" for every entity message (401).
        Waits for external events take no number, so DTFx cannot see one removed or moved.
        What only devhost's stricter check sees (a wait moved or removed, another entity operation
        or target) is logged as a warning (`Severity.WARNING`); the replay checker reports it too.

        `start`: the positions before it hold the same actions as when they were last checked (an
        incremental episode, `_plan`), so only those from it on are compared.
        """
        engine = self.inst.engine
        ids = engine.ids
        if start and (
            len(flat) < len(ids)
            or [seq is None for seq in ids[start:]] != [not _takes_number(a) for a in flat[start : len(ids)]]
        ):
            start = 0  # the layout changed: check (and realign) the whole list
        recorded = self._recorded
        if recorded is None:
            recorded = {ev["EventId"]: ev for ev in self.inst.history if ev["EventType"] in h.SCHEDULING_TYPES}
        rewound = set(engine.rewound)
        numbered = [seq for seq in ids[start:] if seq is not None]
        replayed = [a for a in flat[start:] if _takes_number(a)]
        for k, seq in enumerate(numbered):
            ev = recorded.get(seq)
            if seq in rewound or ev is None:
                continue  # rewind erased its record (`_reschedule_rewound`); a held continue-as-new records none
            if k >= len(replayed):
                self._nondeterminism(seq, describe.scheduled(ev), "nothing (the orchestrator no longer schedules it)")
            found = action_mismatch(replayed[k], ev)
            if found is Severity.ERROR:
                self._nondeterminism(seq, describe.scheduled(ev), describe.action(replayed[k]))
            elif found is Severity.WARNING:
                self._warn_nondeterminism(
                    f"at sequence number {seq} the history recorded {describe.scheduled(ev)}, but the orchestrator now "
                    f"produced {describe.action(replayed[k])}"
                )
        if start:
            return  # the layout from `start` on was compared above
        layout = [not _takes_number(a) for a in flat[: len(ids)]]
        if [seq is None for seq in ids[: len(layout)]] != layout or len(flat) < len(ids):
            old = ", ".join("wait" if seq is None else str(seq) for seq in ids)
            self._warn_nondeterminism(
                "the external-event waits moved or were removed (action order recorded: "
                f"{old}; now: {', '.join(describe.action(a) for a in flat[: len(ids)]) or 'nothing'})"
            )
            # Realign the numbers with the replayed actions, as DTFx does by sequence number alone.
            realigned: list[int | None] = []
            left = iter(numbered)
            remaining = len(numbered)
            for action in flat:
                if not remaining:
                    break
                if _takes_number(action):
                    realigned.append(next(left))
                    remaining -= 1
                else:
                    realigned.append(None)
            engine.ids = realigned

    def _check_reached(self, plan: _Plan) -> None:
        """A recorded task that the replay reaches only later than history has it fails, as in DTFx.

        DTFx replays history event by event while the shim awaits the SDK's actions in turn
        (OutOfProcOrchestrationShim.cs 199-219): a scheduling event met before the shim reached its action
        (e.g. a wait_for_external_event moved in front of it, so the action now waits for a later event)
        finds no action: "the current replay execution hasn't (yet?) scheduled this task"
        (TaskOrchestrationContext.cs 277-411). The other way round (an action reached earlier) goes unseen.
        Checked only where the action now waits behind an external-event wait (the case devhost's own
        histories cannot produce otherwise; the SDK appends a long timer's later parts out of turn), and not
        after a rewind, whose erased failures leave tasks looking unfinished."""
        inst = self.inst
        if inst.engine.rewound:
            return
        if not plan.wait_before_last:
            return  # only a wait in front of a later action can fail here (`blocker` below): skip the O(history) scan
        ids = inst.engine.ids
        hist = inst.history
        where = {ev["EventId"]: i for i, ev in enumerate(hist) if ev["EventType"] in h.SCHEDULING_TYPES}
        shim = _Shim(inst, plan)
        reach: int | None = -1  # the history index after which the shim reaches the next top-level action
        blocker: Action | None = None
        for k, action in enumerate(plan.top):
            start, end = plan.spans[k]
            for pos in range(start, min(end, len(ids))):
                seq = ids[pos]
                at = where.get(seq) if seq is not None else None
                if seq is None or at is None or (reach is not None and at > reach):
                    continue
                if (
                    blocker is None
                    or action_type(blocker) != ActionType.WAIT_FOR_EXTERNAL_EVENT
                    or (hist[at]["EventType"] == EventType.TIMER_CREATED)
                ):
                    continue  # only a wait in front is pinned; the SDK's long-timer parts come out of order
                waiting = describe.action(blocker)
                moved = "the external-event waits moved"  # not a warning after all: this one fails
                self.result.warnings = [w for w in self.result.warnings if moved not in w]
                self.result.new_warnings = [w for w in self.result.new_warnings if moved not in w]
                self._nondeterminism(
                    seq, describe.scheduled(hist[at]), f"nothing there yet (it comes only after {waiting} finishes)"
                )
            if reach is None:
                continue
            done = shim._finished(action, start)
            if done is None:
                reach, blocker = None, action
            elif done > reach:
                reach, blocker = done, action

    def _warn_nondeterminism(self, text: str) -> None:
        inst = self.inst
        self._warn(
            f"devhost: orchestration '{inst.name}' ({inst.instance_id}) replayed differently from its history: "
            f"{text}. Azure does not detect this (DTFx compares only the kind and name of each numbered task) and "
            "carries on; devhost carries on too."
        )

    def _warn(self, text: str, key: str | None = None) -> None:
        """A warning about the user's code: in the result every time, for the log once per instance."""
        self.result.warnings.append(text)
        warned = self.inst.engine.warned
        key = key or text
        if key not in warned:
            warned.append(key)
            del warned[:-20]
            self.result.new_warnings.append(text)

    def _reschedule_rewound(self, flat: list[Action], now: datetime) -> None:
        """Schedule again, under their old sequence numbers, the tasks a rewind erased."""
        rewound = set(self.inst.engine.rewound)
        self.inst.engine.rewound = []
        for pos, seq in enumerate(self.inst.engine.ids):
            if seq in rewound and pos < len(flat):
                self._schedule(flat[pos], action_type(flat[pos]), seq, now)

    def _nondeterminism(self, seq: int, recorded: str, new: str, position: bool = False) -> None:
        where = f"action position {seq}" if position else f"sequence number {seq}"
        self._fail(
            "Non-Deterministic workflow detected: "
            f"at {where} the history recorded {recorded}, but the orchestrator now produced {new}.",
            None,
        )
        raise _Ended

    # ----------------------------------------------------------- scheduling
    def _next_id(self) -> int:
        engine = self.inst.engine
        seq = engine.next_id
        engine.next_id = seq + 1
        return seq

    def _schedule_new(self, plan: _Plan, now: datetime) -> None:
        """Number and send the actions the SDK returned for the first time.

        The shim awaits each top-level action before it invokes the next (OutOfProcOrchestrationShim.cs
        199-219), and a task_all is a .NET Task.WhenAll (181) that ends only when every child ended.
        So after a task_all failed fast in the SDK, nothing after it is scheduled until its last child
        finished: those actions wait here, and a later episode schedules them.
        """
        ids = self.inst.engine.ids
        limit = len(plan.flat)
        gated = plan.compound_before_last  # else nothing can be held back
        blocked = _Shim(self.inst, plan).first_unfinished_compound() if gated else None
        if blocked is not None:
            limit = max(plan.spans[blocked][1], len(ids))
        invoked = len(ids) - ids.count(None)  # what the extension counts: one per action, retries once
        for action in plan.flat[len(ids) : limit]:
            t = action_type(action)
            if t == ActionType.WAIT_FOR_EXTERNAL_EVENT:
                ids.append(None)
                continue
            if not _takes_number(action):
                ids.append(None)
                self._warn(
                    f"devhost: orchestration '{self.inst.name}' ({self.inst.instance_id}) called "
                    f"{describe.action(action)} with max_number_of_attempts "
                    f"{(action.get('retryOptions') or {}).get('maxNumberOfAttempts')}: as on Azure, nothing is "
                    "scheduled (RetryInterceptor.cs 57 makes no attempt) and the task never completes."
                )
                continue
            if t != ActionType.CONTINUE_AS_NEW and invoked >= self.opts.max_actions:
                # DurableOrchestrationContext.cs 1209-1214 (IncrementActionsOrThrowException).
                raise _ActionRefused(
                    f"Maximum amount of orchestration actions ({self.opts.max_actions}) has been reached. This value "
                    "can be configured in host.json file as MaxOrchestrationActions."
                )
            seq = self._next_id()
            ids.append(seq)
            invoked += 1
            if t == ActionType.CONTINUE_AS_NEW:
                continue
            try:
                self._schedule(action, t, seq, now)
            except _ActionRefused:
                ids.pop()  # refused before it took a number; every replay meets it again
                self.inst.engine.next_id = seq
                raise

    def _schedule(self, action: Action, t: int, seq: int, now: datetime) -> None:
        inst = self.inst
        if t in ACTIVITY_TYPES:
            name = action.get("functionName") or ""
            if self.app.activity(name) is None:
                raise _ActionRefused(
                    f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
                )
            self._schedule_activity(name, action.get("input"), seq, now)
            if t == ActionType.CALL_ACTIVITY_WITH_RETRY:
                self._start_retry(seq, "activity", action)
        elif t in SUB_ORCHESTRATOR_TYPES:
            name = action.get("functionName") or ""
            if self.app.orchestrator(name) is None:
                raise _ActionRefused(
                    f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
                )
            self._schedule_sub(name, action.get("input"), action.get("instanceId"), seq, now, action.get("version"))
            if t == ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY:
                self._start_retry(seq, "sub", action)
        elif t == ActionType.CREATE_TIMER:
            fire_at = h.parse_ts(action["fireAt"])
            self._schedule_timer(seq, fire_at, now)
        elif t in ENTITY_TYPES:
            self._send_entity(action, t == ActionType.SIGNAL_ENTITY, seq, now)
        elif t == ActionType.CALL_HTTP:
            request = json.dumps(action.get("httpRequest"))
            ev = h.task_scheduled(now, seq, HTTP_ACTIVITY_NAME, request)
            inst.history.append(ev)
            self._out_work(ev)
        else:
            self._fail(f"Unsupported action type {t}: {describe.action(action)}", None)
            raise _Ended

    def _out_work(self, ev: Event) -> None:
        inst = self.inst
        self.result.outbound.append(Message(inst.instance_id, ev, queue="work", execution_id=inst.execution_id))

    def _schedule_activity(self, name: str, input_text: str | None, seq: int, now: datetime) -> None:
        ev = h.task_scheduled(now, seq, name, input_text)
        self.inst.history.append(ev)
        self._out_work(ev)

    def _schedule_sub(
        self,
        name: str,
        input_text: str | None,
        child_id: str | None,
        seq: int,
        now: datetime,
        version: str | None = None,
    ) -> None:
        inst = self.inst
        version = (self.opts.versioning or Versioning()).version_for_new(version)  # else defaultVersion
        child = child_id or f"{inst.execution_id}:{seq}"
        # DurableOrchestrationContext.cs 597-607: a best-effort check against self and parent, ignoring case.
        if child.lower() in (inst.instance_id.lower(), (inst.parent_instance_id or "").lower()):
            raise _ActionRefused(
                "The instance ID of a sub-orchestration must be different than the instance ID of "
                "a parent orchestration."
            )
        if child.startswith("@"):
            raise _ActionRefused("Orchestration instance ids must not start with @")
        inst.history.append(h.sub_orchestration_created(now, seq, name, child, input_text, version or ""))
        self.result.outbound.append(child_start_message(inst, seq, child, name, input_text, version, now))

    def _schedule_timer(self, seq: int, fire_at: datetime, now: datetime) -> None:
        inst = self.inst
        inst.history.append(h.timer_created(now, seq, fire_at))
        fired = h.timer_fired(fire_at, seq, fire_at)
        self.result.outbound.append(
            Message(
                inst.instance_id, fired, execution_id=inst.execution_id, visible_at=fire_at, sender=inst.instance_id
            )
        )

    def _send_entity(self, action: Action, signal: bool, seq: int, now: datetime) -> None:
        inst = self.inst
        target = action.get("instanceId") or ""
        entity_name = target[1:].split("@", 1)[0] if target.startswith("@") else ""
        if not entity_name or self.app.entity(entity_name) is None:
            raise _ActionRefused(
                f"The function '{entity_name or target}' doesn't exist, is disabled, or is not an entity function."
            )
        request: dict[str, Any] = {
            "op": action.get("operation"),
            "id": entity_request_id(inst.instance_id, inst.execution_id, seq),
        }
        if signal:
            request["signal"] = True
        if action.get("input") is not None:
            request["input"] = json.dumps(action["input"])
        request["parent"] = inst.instance_id
        request["parentExecution"] = inst.execution_id
        request["Timestamp"] = h.format_ts(now)
        text = json.dumps(request)
        inst.history.append(h.event_sent(now, seq, target, "op", text))
        self.result.outbound.append(Message(target, h.event_raised(now, "op", text), sender=inst.instance_id))

    # --------------------------------------------------------------- retries
    def _start_retry(self, seq: int, kind: RetryKind, action: Action) -> None:
        options = action.get("retryOptions") or {}
        self.inst.engine.retries[seq] = RetryState(
            kind=kind,
            name=str(action.get("functionName") or ""),
            input=action.get("input"),
            iid=action.get("instanceId"),
            first=int(options.get("firstRetryIntervalInMilliseconds") or 1000),
            coef=float(options.get("backoffCoefficient") or 1.0),
            # The extension's RetryOptions default the cap to 6 days (RetryOptions.cs 18, 31).
            max_interval=options.get("maxRetryIntervalInMilliseconds") or MAX_RETRY_INTERVAL_MS,
            max=int(options.get("maxNumberOfAttempts") or 0),
            attempt=1,
            current=seq,
            timer=None,
        )

    def _advance_retry(self, last: Event, now: datetime) -> None:
        """Take the sequence numbers the SDK took while processing `last` (§2.7)."""
        retries = self.inst.engine.retries
        t = last["EventType"]
        for key, r in list(retries.items()):
            if (
                t in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED)
                and last["TaskScheduledId"] == r.current
                and r.timer is None
            ):
                timer = self._next_id()
                if r.attempt >= r.max:
                    fire_at = now  # DTFx's final "dummy" timer
                else:
                    delay_ms = r.first * (r.coef ** (r.attempt - 1))
                    if r.max_interval:
                        delay_ms = min(delay_ms, float(r.max_interval))
                    fire_at = now + timedelta(milliseconds=delay_ms)
                r.timer = timer
                self._schedule_timer(timer, fire_at, now)
                return
            if t == EventType.TIMER_FIRED and last["TimerId"] == r.timer:
                r.timer = None
                if r.attempt >= r.max:
                    del retries[key]
                    return
                r.attempt += 1
                seq = self._next_id()
                r.current = seq
                if r.kind == "activity":
                    self._schedule_activity(r.name, r.input, seq, now)
                else:
                    first = next(
                        e
                        for e in self.inst.history
                        if e.get("EventId") == key and e["EventType"] == EventType.SUB_ORCHESTRATION_CREATED
                    )
                    self._schedule_sub(r.name, r.input, r.iid, seq, now, first.get("Version") or None)
                return

    # ------------------------------------------------------------ endings
    def _finish(self, status: RuntimeStatus, output: str | None) -> None:
        inst = self.inst
        inst.runtime_status = status
        inst.output = output
        inst.completed_time = self.now
        inst.engine.retries.clear()
        self.result.finished.append((inst.instance_id, inst.name, status))

    def _fail(self, error: str, details: str | None) -> None:
        inst = self.inst
        reason = f"Orchestrator function '{inst.name}' failed: {error}"
        hist = inst.history
        if not hist or hist[-1]["EventType"] == EventType.ORCHESTRATOR_COMPLETED:
            hist.append(h.orchestrator_started(self.now))
        hist.append(h.execution_completed(self.now, inst.engine.next_id, RuntimeStatus.FAILED, reason, details))
        hist.append(h.orchestrator_completed(self.now))
        self._finish(RuntimeStatus.FAILED, reason)
        if len(hist) > 1 and hist[1].get("ParentInstance"):
            self._notify_parent(hist[1]["ParentInstance"], ok=False, result=reason, details=details)

    def _fail_version(self) -> None:
        """versionFailureStrategy Fail, as DTFx records it (TaskOrchestrationDispatcher.cs 418-426 on main): an
        OrchestrationComplete action with no Result and FailureDetails("VersionMismatch", ...); the Instances
        row's Output is `FailureDetails.ToString()` (AzureTableTrackingStore.cs 1010-1015, FailureDetails.cs
        170-173), so the status shows "VersionMismatch: Orchestration version did not comply with Worker
        Versioning", without the "Orchestrator function 'X' failed:" of a user failure."""
        inst = self.inst
        output = f"VersionMismatch: {MISMATCH_MESSAGE}"
        ev = h.execution_completed(self.now, inst.engine.next_id, RuntimeStatus.FAILED, None)
        ev["FailureDetails"] = {
            "ErrorType": "VersionMismatch",
            "ErrorMessage": MISMATCH_MESSAGE,
            "StackTrace": None,
            "InnerFailure": None,
            "IsNonRetriable": True,
        }
        inst.history.extend([ev, h.orchestrator_completed(self.now)])
        self._finish(RuntimeStatus.FAILED, output)
        if len(inst.history) > 1 and inst.history[1].get("ParentInstance"):
            # DTFx sends the parent the action's null Result; the SDK would show "None": devhost sends the text.
            self._notify_parent(inst.history[1]["ParentInstance"], ok=False, result=output, details=None)

    def _terminate(self, ev: Event) -> None:
        inst = self.inst
        reason = ev.get("Input")
        hist = inst.history
        self._mark_played()
        hist.append(h.orchestrator_started(self._episode_time()))
        hist.append(ev)
        hist.append(h.execution_completed(self.now, inst.engine.next_id, RuntimeStatus.TERMINATED, reason))
        hist.append(h.orchestrator_completed(self.now))
        self.result.episodes += 1
        self._finish(RuntimeStatus.TERMINATED, reason)
        if len(hist) > 1 and hist[1].get("ParentInstance"):
            self._notify_parent(hist[1]["ParentInstance"], ok=False, result=reason, details=None)

    def _notify_parent(self, parent: dict[str, Any], ok: bool, result: str | None, details: str | None) -> None:
        oi = parent.get("OrchestrationInstance") or {}
        seq = int(parent.get("TaskScheduleId") or 0)
        if ok:
            ev = h.sub_orchestration_completed(self.now, seq, result)
        else:
            ev = h.sub_orchestration_failed(self.now, seq, result or "", details)
        sender = self._inst.instance_id if self._inst else None
        target = str(oi.get("InstanceId") or "")
        self.result.outbound.append(Message(target, ev, execution_id=oi.get("ExecutionId"), sender=sender))

    def _continue_as_new(self, plan: _Plan, rest: list[Event]) -> list[Event]:
        inst = self.inst
        flat = plan.flat
        new_input = flat[-1].get("input")
        hist = inst.history
        hist.append(h.continue_as_new(self.now, inst.engine.next_id - 1, new_input))
        hist.append(h.orchestrator_completed(self.now))
        # DTFx carries only the EventRaised events it processes after the orchestrator called
        # ContinueAsNew (TaskOrchestrationContext.cs 414-424); the shim calls it once every earlier
        # action has finished. Events buffered before that point are dropped, as on Azure.
        point = _Shim(inst, plan).continue_as_new_point()
        responses = _entity_request_ids(hist)
        carried = [
            {**ev, "IsPlayed": False}
            for i, ev in enumerate(hist)
            if i > point and ev["EventType"] == EventType.EVENT_RAISED and ev.get("Name") not in responses
        ]
        carried += [ev for ev in rest if ev["EventType"] == EventType.EVENT_RAISED]
        started = hist[1]
        execution_id = self.opts.new_id()
        fresh = h.execution_started(
            self.now,
            instance_id=inst.instance_id,
            execution_id=execution_id,
            name=inst.name,
            input_text=json.dumps(new_input) if new_input is not None else None,
            parent=started.get("ParentInstance"),
            generation=int(started.get("Generation") or 0),
            version=started.get("Version"),  # DTFx TaskOrchestrationDispatcher.cs 1075
        )
        inst.execution_id = execution_id
        inst.input = fresh["Input"]
        # The Instances row's CreatedTime follows the new ExecutionStarted (AzureTableTrackingStore.cs 1047).
        inst.created_time = self.now
        inst.history = []
        inst.engine = EngineState(msgs=inst.engine.msgs, last_os=inst.engine.last_os, warned=inst.engine.warned)
        inst.runtime_status = RuntimeStatus.RUNNING
        self._carry_status = True
        self.result.history_reset = True
        self.result.new_events_from = 0
        return [fresh, *carried, *[ev for ev in rest if ev["EventType"] in CONTROL_EVENTS]]

    # ------------------------------------------------------------ open tasks
    def _open_tasks(self, flat: list[Action]) -> list[Event]:
        """The scheduling events of tasks DTFx still counts as open (TaskOrchestrationContext.cs 73):
        activities, sub-orchestrations, call_http and timers that did not finish, but for timers the
        SDK cancelled (267). Entity calls and external-event waits are the extension's, not DTFx's."""
        inst = self.inst
        cancelled = {
            seq
            for seq, action in zip(inst.engine.ids, flat, strict=False)
            if seq is not None and action_type(action) == ActionType.CREATE_TIMER and action.get("isCanceled")
        }
        finished = {
            ev[h.COMPLETION_ID_FIELD[ev["EventType"]]]
            for ev in inst.history
            if ev["EventType"] in h.COMPLETION_ID_FIELD
        }
        return [
            ev
            for ev in inst.history
            if ev["EventType"] in OPEN_TASK_TYPES and ev["EventId"] not in finished and ev["EventId"] not in cancelled
        ]

    def _warn_open(self, still_open: list[Event], how: str) -> None:
        inst = self.inst
        what = "; ".join(_describe_open(ev) for ev in still_open)
        self._warn(
            f"devhost: orchestration '{inst.name}' ({inst.instance_id}) {how} while {len(still_open)} task"
            f"{'s it started are' if len(still_open) > 1 else ' it started is'} still open: {what}. As on Azure, it "
            "stays Running until they finish (DTFx ends an orchestration only when no task is open). A timer "
            "that lost a task_any needs timer.cancel(); in azure-functions-durable 1.7 cancel() does not reach a "
            "timer longer than 6 days (the SDK splits it into 3-day parts).",
            key="open tasks",
        )

    def _check_custom_status_size(self, custom: Any) -> None:
        """DurableOrchestrationContext.cs 221-230: custom status over 16 KB, counted as UTF-16
        (MessagePayloadDataConverter.cs 60-71), fails the orchestration before its actions run."""
        text = json.dumps(custom, ensure_ascii=False, separators=(",", ":"))
        size_kb = len(text.encode("utf-16-le")) // 1024
        if size_kb > MAX_CUSTOM_STATUS_KB:
            self.inst.custom_status = None
            self._fail(
                "The UTF-16 size of the JSON-serialized payload must not exceed "
                f"{MAX_CUSTOM_STATUS_KB:,} KB. The current payload size is {size_kb:,} KB.",
                None,
            )
            raise _Ended


def _takes_number(action: Action) -> bool:
    """Whether the shim gives this action a sequence number: not a wait, and not a retry with no
    attempts (RetryInterceptor.cs 57: the loop never runs, nothing is scheduled)."""
    t = action_type(action)
    if t == ActionType.WAIT_FOR_EXTERNAL_EVENT:
        return False
    if t in (ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
        return int((action.get("retryOptions") or {}).get("maxNumberOfAttempts") or 0) > 0
    return True


class Severity(enum.StrEnum):
    """How a replayed action that differs from the recorded one counts.

    ERROR: DTFx fails the orchestration too ("Non-Deterministic workflow detected").
    WARNING: only devhost's stricter comparison sees it (an entity message's operation or target,
    a timer's due time); Azure carries on, so devhost and the replay checker only warn.
    """

    ERROR = "error"
    WARNING = "warning"


def event_mismatch(recorded: Event, produced: Event) -> Severity | None:
    """Compare two scheduling events for the same sequence number as DTFx does (TaskOrchestrationContext.cs
    277-412); None when they match, WARNING when they differ only in what DTFx does not compare."""
    t = recorded["EventType"]
    if t != produced["EventType"]:
        return Severity.ERROR
    if t in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED):
        if str(recorded.get("Name") or "").lower() != str(produced.get("Name") or "").lower():
            return Severity.ERROR
        return None
    if t == EventType.EVENT_SENT:
        if str(recorded.get("Name") or "").lower() != str(produced.get("Name") or "").lower():
            return Severity.ERROR
        same = recorded.get("InstanceId") == produced.get("InstanceId") and request_op(
            recorded.get("Input")
        ) == request_op(produced.get("Input"))
        return None if same else Severity.WARNING
    if t == EventType.TIMER_CREATED:
        return None if recorded.get("FireAt") == produced.get("FireAt") else Severity.WARNING
    return None


def action_mismatch(action: Action, recorded: Event) -> Severity | None:
    """Compare a replayed action with the scheduling event recorded under its sequence number."""
    t = action_type(action)
    et = recorded["EventType"]
    name = str(action.get("functionName") or "").lower()
    if t in ACTIVITY_TYPES:
        ok = et == EventType.TASK_SCHEDULED and str(recorded.get("Name", "")).lower() == name
        return None if ok else Severity.ERROR
    if t in SUB_ORCHESTRATOR_TYPES:
        ok = et == EventType.SUB_ORCHESTRATION_CREATED and str(recorded.get("Name", "")).lower() == name
        return None if ok else Severity.ERROR
    if t == ActionType.CREATE_TIMER:
        return None if et == EventType.TIMER_CREATED else Severity.ERROR
    if t in ENTITY_TYPES:
        if et != EventType.EVENT_SENT:
            return Severity.ERROR
        same = recorded.get("InstanceId") == action.get("instanceId") and request_op(
            recorded.get("Input")
        ) == action.get("operation")
        return None if same else Severity.WARNING
    if t == ActionType.CALL_HTTP:
        ok = et == EventType.TASK_SCHEDULED and recorded.get("Name") == HTTP_ACTIVITY_NAME
        return None if ok else Severity.ERROR
    # Anything else (a continue-as-new) now holds a number under which history recorded a task.
    return Severity.ERROR


def _entity_request_ids(events: list[Event]) -> set[str | None]:
    """Names of entity responses: the request ids of the execution's EventSent messages."""
    return {request_id(ev["Input"]) for ev in events if ev["EventType"] == EventType.EVENT_SENT and ev.get("Input")}


def _describe_open(ev: Event) -> str:
    t = ev["EventType"]
    if t == EventType.TIMER_CREATED:
        return f"a timer due at {ev.get('FireAt')} (task {ev['EventId']})"
    if t == EventType.SUB_ORCHESTRATION_CREATED:
        return f"sub-orchestration '{ev.get('Name')}' as '{ev.get('InstanceId')}' (task {ev['EventId']})"
    if ev.get("Name") == HTTP_ACTIVITY_NAME:
        return f"a call_http request (task {ev['EventId']})"
    return f"activity '{ev.get('Name')}' (task {ev['EventId']})"


@dataclass
class _Plan:
    """The SDK's actions as the extension's shim replays them: top-level actions, each awaited in
    turn (OutOfProcOrchestrationShim.cs 199-219), and the run of the flattened list each spans.
    Extended in place by an incremental episode (`extend`): the lists are the plan's own."""

    top: list[Action] = field(default_factory=list)
    flat: list[Action] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    waits: int = 0  # top-level external-event waits
    compounds: int = 0  # top-level task_all / task_any

    @classmethod
    def of(cls, actions: list[Any]) -> _Plan:
        plan = cls()
        plan.extend(cls.top_of(actions))
        return plan

    @staticmethod
    def top_of(actions: list[Any]) -> list[Action]:
        # V2/V3 payloads are `[[a0, a1, ...]]` (one yield each); a V1 list of lists is read as one list.
        return actions[0] if len(actions) == 1 and isinstance(actions[0], list) else flatten(actions)

    def extend(self, actions: list[Action]) -> None:
        flat, spans = self.flat, self.spans
        for action in actions:
            start = len(flat)
            t = action_type(action)
            if t in COMPOUND:
                flat.extend(flatten([action]))
                self.compounds += 1
            else:
                flat.append(action)
                if t == ActionType.WAIT_FOR_EXTERNAL_EVENT:
                    self.waits += 1
            spans.append((start, len(flat)))
        self.top.extend(actions)

    def _before_last(self, count: int, kinds: frozenset[int]) -> bool:
        return count > (1 if self.top and action_type(self.top[-1]) in kinds else 0)

    @property
    def wait_before_last(self) -> bool:
        """An external-event wait among the top-level actions before the last one."""
        return self._before_last(self.waits, _WAIT)

    @property
    def compound_before_last(self) -> bool:
        """A task_all / task_any among the top-level actions before the last one."""
        return self._before_last(self.compounds, COMPOUND)


_WAIT = frozenset({ActionType.WAIT_FOR_EXTERNAL_EVENT})


@dataclass
class _PlanMemo:
    """What the engine keeps per instance in the replay cache (`ReplayCache.memo`): the plan of the last
    episode's actions, and how many numbered positions (`EngineState.ids`) are already checked against
    history or were recorded by devhost from these actions."""

    plan: _Plan
    checked: int = 0


class _Shim:
    """Where in history each of the shim's .NET tasks finished (an index into the execution's history;
    -1: finished when invoked; None: not finished). Used for task_all's wait for every child (A2) and
    for the continue-as-new point (which events are carried)."""

    def __init__(self, inst: Instance, plan: _Plan) -> None:
        self.plan = plan
        self.ids: list[int | None] = inst.engine.ids
        self.retries = inst.engine.retries
        self.done_at: dict[int, int] = {}
        self.succeeded: set[int] = set()
        self.sent: dict[int, str | None] = {}
        self.replies: dict[str, int] = {}
        self.events: dict[str, list[int]] = {}
        responses = _entity_request_ids(inst.history)
        for i, ev in enumerate(inst.history):
            t = ev["EventType"]
            if t in h.COMPLETION_ID_FIELD:
                self.done_at.setdefault(ev[h.COMPLETION_ID_FIELD[t]], i)
                if t in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED):
                    self.succeeded.add(ev["TaskScheduledId"])
            elif t == EventType.EVENT_SENT:
                self.sent[ev["EventId"]] = request_id(ev.get("Input"))
            elif t == EventType.EVENT_RAISED:
                name = ev.get("Name") or ""
                if name in responses:
                    self.replies.setdefault(name, i)
                else:
                    self.events.setdefault(name.lower(), []).append(i)
        self.wait_rank: dict[int, int] = {}
        seen: dict[str, int] = {}
        for pos, action in enumerate(plan.flat):
            if action_type(action) == ActionType.WAIT_FOR_EXTERNAL_EVENT:
                name = str(action.get("externalEventName") or "").lower()
                self.wait_rank[pos] = seen.get(name, 0)
                seen[name] = self.wait_rank[pos] + 1

    def first_unfinished_compound(self) -> int | None:
        """The first top-level task_all/task_any the SDK has moved past but .NET still awaits."""
        last = len(self.plan.top) - 1
        for k, action in enumerate(self.plan.top):
            if k < last and action_type(action) in COMPOUND and self._finished(action, self.plan.spans[k][0]) is None:
                return k
        return None

    def continue_as_new_point(self) -> int:
        """Where ContinueAsNew ran: after every earlier top-level action finished."""
        point = -1
        for k, action in enumerate(self.plan.top[:-1]):
            at = self._finished(action, self.plan.spans[k][0])
            if at is not None:
                point = max(point, at)
        return point

    def _finished(self, action: Action, pos: int) -> int | None:
        t = action_type(action)
        if t in COMPOUND:
            children = [c for c in action.get("compoundActions") or [] if isinstance(c, dict)]
            found: list[int | None] = []
            for child in children:
                found.append(self._finished(child, pos))
                pos += len(flatten([child]))
            if not found:
                return -1
            done = [x for x in found if x is not None]
            if t == ActionType.WHEN_ALL:
                return None if len(done) < len(found) else max(done)
            return min(done) if done else None
        if t == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            events = self.events.get(str(action.get("externalEventName") or "").lower(), [])
            rank = self.wait_rank.get(pos, 0)
            return events[rank] if rank < len(events) else None
        if t in (ActionType.SIGNAL_ENTITY, ActionType.SCHEDULED_SIGNAL_ENTITY, ActionType.CONTINUE_AS_NEW):
            return -1
        if not _takes_number(action):
            return -1  # a retry with no attempts: the interceptor returns at once
        seq = self.ids[pos] if pos < len(self.ids) else None
        if seq is None:
            return None
        if t == ActionType.CREATE_TIMER and action.get("isCanceled"):
            return -1
        if t in ENTITY_TYPES:
            rid = self.sent.get(seq)
            return self.replies.get(rid) if rid else None
        retry = self.retries.get(seq)
        if retry is not None:  # in progress, or finished by the event this episode applies
            current, timer = retry.current, retry.timer
            if timer is None:
                return self.done_at.get(current) if current in self.succeeded else None
            # The last attempt's (dummy) timer fired: the retry gave up (RetryInterceptor.cs 73-81).
            return self.done_at.get(timer) if retry.attempt >= retry.max else None
        return self.done_at.get(seq)


def process_orchestration(
    app: AppIndex,
    instance: Instance | None,
    messages: list[Message],
    now: datetime,
    options: EngineOptions | None = None,
) -> StepResult:
    """Apply delivered messages to one orchestration instance. Pure: no I/O, no clock reads."""
    return OrchestrationStep(app, instance, now, options or EngineOptions()).run(messages)
