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
nondeterminism check needs, and any `HistoryView` the engine asks for (`view`: what history
holds, for filtering messages), extended with new events instead of rebuilt per episode. The
prefix each call compares is compared in C (`_replaced`), so an episode's own cost does not grow
with the history (incremental replay: `Session`).
"""

from __future__ import annotations

import json
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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
    - `get_orchestrator_state_str()` only reads that state and serialises every action so far
      (`OrchestratorState.to_json`: `action.to_json()` for each). The action list only grows
      (`DurableOrchestrationContext._add_to_actions` appends to `_action_payload_v2`), and the one
      attribute of an action that changes after it was added is `CreateTimerAction.is_cancelled`
      (`TimerTask.cancel`, Task.py 284/382). So `state()` keeps the JSON of the actions it already
      serialised, serialises only the new ones (and a timer whose `is_cancelled` flipped), and builds
      the rest of the state with the SDK's own `OrchestratorState`: the same dict as
      `json.loads(get_orchestrator_state_str())`, in O(new actions) instead of O(all actions).

    What it does not give: user code runs once per event, not once per episode, so side
    effects outside the SDK that are not guarded by `is_replaying` happen fewer times than
    under full replay, and nondeterministic code is not re-run. Hence (devhost.orchestration):
    a full replay whenever the history has doubled since the last one and whenever the
    orchestration completes, fails or continues as new, so its actions are checked against
    the history as in full replay mode (amortised linear); every other unusual case (no
    session, a history that is not a strict extension of what the session consumed, a
    rewind) replays in full too.
    """

    __slots__ = ("executor", "consumed", "full_len", "actions", "_timers")

    def __init__(self, executor: Any, consumed: int) -> None:
        self.executor = executor
        self.consumed = consumed  # events fed so far
        self.full_len = consumed  # history length at the last full replay
        # The JSON of the top-level actions serialised so far (append-only but for a cancelled timer's
        # entry, replaced by a new dict); read-only for callers.
        self.actions: list[dict[str, Any]] = []
        self._timers: list[tuple[int, Any, bool]] = []  # (top-level position, CreateTimerAction, serialised flag)

    def resume(self, objects: list[Any]) -> dict[str, Any] | None:
        """Feed the new events; the state, or None when the execution ended (replay it in full)."""
        ex = self.executor
        ex.context._histories = objects
        ex._is_processing_new_events = True
        for event in objects[self.consumed :]:
            ex.process_event(event)
            if ex.has_execution_completed:
                return None
        self.consumed = len(objects)
        return self.state()

    def adopt(self, state: dict[str, Any]) -> None:
        """Take the actions' JSON from a full replay's state (the same executor's), so the next
        `state()` serialises only what comes after them."""
        from azure.durable_functions.models.ReplaySchema import ReplaySchema

        ctx = self.executor.context
        actions = state.get("actions")
        if ctx._replay_schema is ReplaySchema.V1 or not isinstance(actions, list) or len(actions) != 1:
            return
        top = ctx._action_payload_v2
        if len(actions[0]) != len(top):
            return
        self.actions = actions[0]
        self._timers = [(pos, t, t.is_cancelled) for pos, t in _timers_at(top, 0)]

    def state(self) -> dict[str, Any]:
        """`json.loads(executor.get_orchestrator_state_str())` for a running execution (no output,
        no error), serialising only the actions this session has not serialised yet."""
        from azure.durable_functions.models.OrchestratorState import OrchestratorState
        from azure.durable_functions.models.ReplaySchema import ReplaySchema

        ex = self.executor
        ctx = ex.context
        if ctx._replay_schema is ReplaySchema.V1:  # a list of lists per yield: no append-only payload
            self.actions, self._timers = [], []
            return json.loads(ex.get_orchestrator_state_str())  # type: ignore[no-any-return]
        top = ctx._action_payload_v2
        done = self.actions
        flipped = sorted({pos for pos, timer, flag in self._timers if timer.is_cancelled != flag})
        if flipped:
            for pos in flipped:
                done[pos] = _action_json([top[pos]])[0]
            self._timers = [(pos, timer, timer.is_cancelled) for pos, timer, _ in self._timers]
        if len(top) > len(done):
            start = len(done)
            done.extend(_action_json(top[start:]))
            self._timers.extend((pos, t, t.is_cancelled) for pos, t in _timers_at(top[start:], start))
        head = OrchestratorState(
            is_done=ex.orchestration_invocation_succeeded,
            actions=[],
            output=ex.output,
            replay_schema=ctx._replay_schema,
            error=None,
            custom_status=ctx.custom_status,
        )
        state: dict[str, Any] = json.loads(head.to_json_string())
        state["actions"] = [done]
        return state


def _action_json(actions: list[Any]) -> list[dict[str, Any]]:
    """What `OrchestratorState.to_json_string` makes of these actions, read back as JSON."""
    from azure.durable_functions.models.utils.df_serialization import df_dumps

    return json.loads(df_dumps([action.to_json() for action in actions]))  # type: ignore[no-any-return]


def _timers_at(actions: list[Any], offset: int) -> list[tuple[int, Any]]:
    """(top-level position, CreateTimerAction) for each timer in `actions`, at `offset` onwards."""
    return [(offset + i, timer) for i, action in enumerate(actions) for timer in _timers_in(action)]


def _timers_in(action: Any) -> list[Any]:
    """The CreateTimerActions in a top-level action (a compound action holds its children)."""
    from azure.durable_functions.models.actions.CompoundAction import CompoundAction
    from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction

    def walk(item: Any) -> list[Any]:
        if isinstance(item, CreateTimerAction):
            return [item]
        if isinstance(item, CompoundAction):
            return [timer for child in item.compound_tasks for timer in walk(child)]
        return []

    return walk(action)


class _Entry:
    __slots__ = ("events", "objects", "recorded", "session", "view", "view_events", "settled", "view_settled", "memo")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.objects: list[Any] = []  # azure.durable_functions HistoryEvent, one per event
        self.recorded: dict[int, Event] = {}  # EventId -> scheduling event
        self.session: Session | None = None
        self.view: HistoryView | None = None
        self.view_events: list[Event] = []  # the events `view` has seen
        self.settled = 0  # len(events) before the last sync extended it (`_replaced`)
        self.view_settled = 0
        self.memo: Any = None  # the engine's own data derived from this history (dropped with it)


def _same_but_played(old: Event, new: Event) -> bool:
    if len(old) != len(new):
        return False
    for key, value in new.items():
        if key != _PLAYED and old.get(key, _missing) != value:
            return False
    return True


_missing = object()


def _replaced(old: list[Event], new: list[Event], n: int, settled: int) -> Iterator[int]:
    """The positions below `n` where `new` holds another object than `old`, in order; `old` takes
    `new`'s objects where they are equal.

    An episode replaces (IsPlayed) or appends only events after those the previous sync already had
    (`settled`, a hint: the length of `old` before its last extension). So the settled prefix is
    compared in one C-level list comparison (identity first, then content), which a rewind or a reload
    fails; only then, and for the few positions after it, are the events compared one by one."""
    k = min(settled, n)
    if k and (old if k == len(old) else old[:k]) == (new if k == len(new) else new[:k]):
        if old[0] is not new[0] or old[k - 1] is not new[k - 1]:
            old[:k] = new[:k]  # equal, not identical (a reload): keep the new objects so identity holds next time
    else:
        k = 0
    same = list(map(operator.is_, old[k:n], new[k:n]))
    i = -1
    while True:
        try:
            i = same.index(False, i + 1)
        except ValueError:
            return
        yield k + i


class HistoryView:
    """A view of one instance's history that is extended event by event (`add`).

    `ReplayCache.view` keeps one per instance and hands it back when the history extends the events it
    has seen (IsPlayed aside), so building it costs O(new events) per episode instead of O(history)."""

    def add(self, event: Event) -> None:
        raise NotImplementedError


_View = TypeVar("_View", bound=HistoryView)


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

    def memo(self, instance_id: str) -> Any:
        """What `set_memo` left for this instance, while its history has only been extended since."""
        with self._lock:
            entry = self._entries.get(instance_id)
        return None if entry is None else entry.memo

    def set_memo(self, instance_id: str, memo: Any) -> None:
        with self._lock:
            entry = self._entries.get(instance_id)
        if entry is not None:
            entry.memo = memo

    def view(self, instance_id: str, history: list[Event], make: Callable[[], _View]) -> _View:
        """`make()` with every event of `history` added, kept from the last call where `history` extends
        what it saw (IsPlayed aside). Read-only for the caller: it is handed out again next time."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None:
                entry = self._entries[instance_id] = _Entry()
            view, seen, settled = entry.view, entry.view_events, entry.view_settled
        keep = min(len(seen), len(history))
        if view is not None:
            for i in _replaced(seen, history, keep, settled):
                if seen[i] == history[i] or _same_but_played(seen[i], history[i]):
                    seen[i] = history[i]
                    continue
                view = None
                break
        if view is None or keep < len(seen):
            view, seen, keep = make(), [], 0
        for ev in history[keep:]:
            view.add(ev)
        entry.view_settled = len(seen)
        seen.extend(history[keep:])
        entry.view, entry.view_events = view, seen
        return view  # type: ignore[return-value]

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
        for i in _replaced(events, history, keep, entry.settled):
            old, new = events[i], history[i]
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
        entry.settled = keep
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
        return list(objects), entry.recorded, session


def decode(events: list[Event]) -> list[Any]:
    """`HistoryEvent`s exactly as the SDK builds them from the context JSON."""
    from azure.durable_functions.models.history import HistoryEvent

    return [HistoryEvent(**he) for he in json.loads(json.dumps(events))]


def orchestrator_function(handler: Callable[..., Any]) -> Callable[..., Any] | None:
    """The user's generator function behind a handler made by `Orchestrator.create`, else None."""
    fn = getattr(handler, "orchestrator_function", None)
    return fn if callable(fn) else None


def call_orchestrator(
    handler: Callable[..., Any],
    fn: Callable[..., Any],
    context: dict[str, Any],
    objects: list[Any],
    resumable: bool = True,
) -> tuple[dict[str, Any], Session | None]:
    """What `Orchestrator.create(fn)`'s handle does with the context JSON, from decoded events, with its
    state JSON read back; with a `Session` to continue from when the execution has not ended.

    `context` is the context dict devhost would send as JSON, its "history" holding only the
    first OrchestratorStarted and the ExecutionStarted (what the constructor reads). The SDK raises
    as its handle does (an orchestrator failure: the state after the out-of-proc marker).
    No session unless `resumable` (full replay mode keeps none)."""
    from azure.durable_functions.models import DurableOrchestrationContext
    from azure.durable_functions.orchestrator import Orchestrator

    ctx = DurableOrchestrationContext(**json.loads(json.dumps(context)))
    ctx._histories = objects
    ctx._input_expected_type = getattr(handler, "_df_input_type", None)
    orchestrator = Orchestrator(fn)
    state: dict[str, Any] = json.loads(orchestrator.handle(ctx))
    ex = orchestrator.task_orchestration_executor
    if not resumable or getattr(ex, "generator", None) is None or ex.has_execution_completed:
        return state, None
    session = Session(ex, len(objects))
    session.adopt(state)
    return state, session


def can_shortcut(history: list[Event]) -> bool:
    """The constructor reads only the first OrchestratorStarted and the ExecutionStarted."""
    return (
        len(history) >= 2
        and history[0]["EventType"] == EventType.ORCHESTRATOR_STARTED
        and history[1]["EventType"] == EventType.EXECUTION_STARTED
    )
