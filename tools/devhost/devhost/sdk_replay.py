"""Calling the SDK's orchestrator without re-decoding the whole history every episode.

The Functions host hands the Python worker the orchestration context as JSON text and the
SDK's `Orchestrator.create(fn)` handler decodes it: `json.loads`, then one `HistoryEvent`
per event (`DurableOrchestrationContext.__init__`), before `TaskOrchestrationExecutor`
replays them. Every episode replays the whole history, so re-serialising and re-decoding
the old events is most of the cost that is not the user's code, and it is the same work
every time: the engine never mutates a stored event (it replaces it, `Instance.copy`).

`ReplayCache` keeps, per instance, the `HistoryEvent` objects the SDK built for the events
it saw last time, and `call_orchestrator` builds the context from them, decoding only the
new events. What the SDK sees is what the JSON route gives it (pinned at 1.7.0):

- each event goes through the same JSON text round trip (`json.dumps` then `json.loads`)
  before `HistoryEvent(**event)`, so every attribute has the type the JSON route gives it;
- the context is built by the SDK's own constructor with the first two events (the first
  OrchestratorStarted and the ExecutionStarted, the only ones `__init__` reads: the
  decision-start time and `_extract_version_from_history`), then `_histories` is set to
  the full list; the handler's `_df_input_type` is propagated as its `handle` does;
- `HistoryEvent` objects are only read by the executor (`process_event`, `set_task_value`
  read attributes; no SDK code assigns to one), so sharing them between episodes is safe.
  The one field that changes on a stored event is `IsPlayed` (`OrchestrationStep._mark_played`
  replaces the event with a copy that has it set): the cache sees the replaced event is
  equal but for that field and updates the object's `_is_played`.

Any other difference from the cached prefix (a rewind, continue-as-new, a history reloaded
from storage that differs) drops the cached objects from that point on and decodes again.
The cache also keeps the map of scheduling events by sequence number that the
nondeterminism check needs, extended with new events instead of rebuilt per episode.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import history as h
from .history import Event, EventType

_PLAYED = "IsPlayed"


class Session:
    """A running orchestration's SDK executor kept between episodes (incremental replay).

    What this relies on in the SDK (azure-functions-durable 1.7.0,
    `models/TaskOrchestrationExecutor.py`), read from its source:

    - `execute(context, history, fn)` is a loop `for event in history: process_event(event)`
      that stops once `has_execution_completed`; it holds no state outside the executor and its
      `context` (open tasks, deferred completions, actions, custom status, the new-uuid counter,
      `current_utc_datetime`) and the generator `self.generator`. So feeding the events of the
      next episode to `process_event` continues exactly where a full replay of the longer
      history would be after its old events: a full replay runs the same deterministic steps
      on the same prefix first.
    - The only per-call inputs are `_is_processing_new_events` (True from the last
      OrchestratorStarted on: every event fed here is new, so it is set True) and
      `current_task.is_played` (already resolved for the old events). `context._histories`
      is set to the full list so `context.histories` reads as in a full replay.
    - `get_orchestrator_state_str()` only reads that state (it serialises all actions so far).

    What it does not give: user code runs once per event, not once per episode, so side
    effects outside the SDK that are not guarded by `is_replaying` happen fewer times than
    under full replay, and nondeterministic code is not re-run. Hence (devhost.orchestration):
    a full replay whenever the history has doubled since the last one and whenever the
    orchestration completes, fails or continues as new, so its actions are checked against
    the history as in full replay mode (amortised linear); every other unusual case (no
    session, a history that is not a strict extension of what the session consumed, a
    rewind) replays in full too.
    """

    __slots__ = ("executor", "consumed", "full_len")

    def __init__(self, executor: Any, consumed: int) -> None:
        self.executor = executor
        self.consumed = consumed  # events fed so far
        self.full_len = consumed  # history length at the last full replay

    def resume(self, objects: list[Any]) -> str | None:
        """Feed the new events; the state JSON, or None when the execution ended (replay it in full)."""
        ex = self.executor
        ex.context._histories = objects
        ex._is_processing_new_events = True
        for event in objects[self.consumed :]:
            ex.process_event(event)
            if ex.has_execution_completed:
                return None
        self.consumed = len(objects)
        return ex.get_orchestrator_state_str()  # type: ignore[no-any-return]


class _Entry:
    __slots__ = ("events", "objects", "recorded", "session")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.objects: list[Any] = []  # azure.durable_functions HistoryEvent, one per event
        self.recorded: dict[int, Event] = {}  # EventId -> scheduling event
        self.session: Session | None = None


def _same_but_played(old: Event, new: Event) -> bool:
    if len(old) != len(new):
        return False
    for key, value in new.items():
        if key != _PLAYED and old.get(key, _missing) != value:
            return False
    return True


_missing = object()


class ReplayCache:
    """Decoded history per instance (LRU, at most `size` instances); thread-safe.

    Keyed by instance id; validity is checked against the history itself each time, so a
    stale or foreign entry only costs a re-decode, never a wrong replay."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        # Events decoded / reused from earlier episodes; SDK calls that replayed in full / resumed a session.
        self.stats = {"decoded": 0, "reused": 0, "full": 0, "resumed": 0}

    def drop(self, instance_id: str) -> None:
        with self._lock:
            self._entries.pop(instance_id, None)

    def keep(self, instance_id: str, session: Session) -> None:
        """Keep `session` for the next episode (after a successful SDK call on the synced history)."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is not None and len(entry.objects) == session.consumed:
                entry.session = session

    def sync(self, instance_id: str, history: list[Event]) -> tuple[list[Any], dict[int, Event], Session | None]:
        """The SDK `HistoryEvent`s for `history`, its scheduling events by EventId, and the kept
        session when `history` strictly extends what it consumed (it is taken: `keep` it again)."""
        with self._lock:
            entry = self._entries.pop(instance_id, None)
        if entry is None:
            entry = _Entry()
        session, entry.session = entry.session, None
        events, objects = entry.events, entry.objects
        if session is not None and (session.consumed != len(events) or len(history) <= len(events)):
            session = None
        keep = min(len(events), len(history))
        for i in range(keep):
            old, new = events[i], history[i]
            if old is new:
                continue
            if old == new:
                events[i] = new
                continue
            if _same_but_played(old, new):
                events[i] = new
                objects[i]._is_played = new[_PLAYED]
                continue
            keep = i
            break
        if keep < len(events):
            # Not an extension of what was decoded: start again (rare: rewind, reload, new execution).
            entry = _Entry()
            events, objects = entry.events, entry.objects
            keep = 0
            session = None
        new_events = history[keep:]
        if new_events:
            objects.extend(decode(new_events))
            events.extend(new_events)
            recorded = entry.recorded
            for ev in new_events:
                if ev["EventType"] in h.SCHEDULING_TYPES:
                    recorded[ev["EventId"]] = ev
        self.stats["decoded"] += len(new_events)
        self.stats["reused"] += keep
        with self._lock:
            self._entries[instance_id] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return list(objects), dict(entry.recorded), session


def decode(events: list[Event]) -> list[Any]:
    """`HistoryEvent`s exactly as the SDK builds them from the context JSON."""
    from azure.durable_functions.models.history import HistoryEvent

    return [HistoryEvent(**he) for he in json.loads(json.dumps(events))]


def orchestrator_function(handler: Callable[..., Any]) -> Callable[..., Any] | None:
    """The user's generator function behind a handler made by `Orchestrator.create`, else None."""
    fn = getattr(handler, "orchestrator_function", None)
    return fn if callable(fn) else None


def call_orchestrator(
    handler: Callable[..., Any], fn: Callable[..., Any], context: dict[str, Any], objects: list[Any]
) -> tuple[str, Session | None]:
    """What `Orchestrator.create(fn)`'s handle does with the context JSON, from decoded events;
    with a `Session` to continue from when the execution has not ended.

    `context` is the context dict devhost would send as JSON, its "history" holding only the
    first OrchestratorStarted and the ExecutionStarted (what the constructor reads)."""
    from azure.durable_functions.models import DurableOrchestrationContext
    from azure.durable_functions.orchestrator import Orchestrator

    ctx = DurableOrchestrationContext(**json.loads(json.dumps(context)))
    ctx._histories = objects
    ctx._input_expected_type = getattr(handler, "_df_input_type", None)
    orchestrator = Orchestrator(fn)
    text = orchestrator.handle(ctx)
    ex = orchestrator.task_orchestration_executor
    resumable = getattr(ex, "generator", None) is not None and not ex.has_execution_completed
    return text, Session(ex, len(objects)) if resumable else None


def can_shortcut(history: list[Event]) -> bool:
    """The constructor reads only the first OrchestratorStarted and the ExecutionStarted."""
    return (
        len(history) >= 2
        and history[0]["EventType"] == EventType.ORCHESTRATOR_STARTED
        and history[1]["EventType"] == EventType.EXECUTION_STARTED
    )
