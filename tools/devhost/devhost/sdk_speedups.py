"""Memoize what the SDK recomputes on every replay, changing nothing the app can see.

Every episode replays the whole history (full replay, as Azure does), so per earlier event
the SDK repeats the same work each episode:

- it builds each `HistoryEvent` with `dateutil.parser.parse(Timestamp)` — about 100 µs per
  event. The same strings are parsed again every episode, so an LRU cache around that exact
  function returns identical (immutable) datetimes and changes no behaviour;
- its codec reads AZURE_FUNCTIONS_DURABLE_STRICT_TYPING on every value (`_memoize_strict_mode`);
- it re-decodes each earlier result and re-encodes each re-created action's input
  (`_cache_codec`, immutable values only);
- its executor loop pays several property and enum look-ups per event (`_fast_executor`),
  `CallActivityAction.to_json` three `hasattr`/`getattr` pairs per action (`_fast_activity_to_json`)
  and `_add_to_actions` two `Enum.value` reads per action (`_fast_add_to_actions`).

Each function says why what the user's code sees is unchanged. The replay-path patches apply
only to the exact SDK source they were written against (`_SOURCES`). The Functions host in
Azure pays the full cost; devhost only avoids repeating it.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib
import inspect
import logging
from datetime import datetime
from types import GeneratorType
from typing import Any

log = logging.getLogger(__name__)

_applied = False


def apply() -> None:
    """Install the cache once per process (idempotent)."""
    global _applied
    if _applied:
        return
    # The package re-exports the class under the module's name; go through sys.modules.
    module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")

    original = module.dt_parse

    @functools.lru_cache(maxsize=200_000)
    def cached(text: str) -> datetime:
        return original(text)  # type: ignore[no-any-return]

    def dt_parse(timestr: Any, *args: Any, **kwargs: Any) -> datetime:
        if args or kwargs or not isinstance(timestr, str):
            return original(timestr, *args, **kwargs)  # type: ignore[no-any-return]
        return cached(timestr)

    module.dt_parse = dt_parse  # type: ignore[attr-defined]
    _memoize_strict_mode()
    _patch_replay()
    _applied = True


_episode_strict: contextvars.ContextVar[bool | None] = contextvars.ContextVar("devhost_episode_strict", default=None)


def _memoize_strict_mode() -> None:
    """Read AZURE_FUNCTIONS_DURABLE_STRICT_TYPING once per episode, not once per value.

    The SDK's JSON codec (`azure.functions._durable_functions.df_dumps` / `df_loads`) asks
    `_is_strict_mode()` — an `os.environ` lookup — on every call, and a replay makes two calls per
    earlier activity (re-creating its action, re-decoding its result): about a million lookups in a
    1,000-step chain, 5-7% of the profile. Within one episode (`Orchestrator.handle`) the answer is
    read once and kept in a context variable; outside episodes (activities, clients) every call
    still reads the environment, so changing the variable between episodes behaves as before."""
    from azure.durable_functions.orchestrator import Orchestrator
    from azure.functions import _durable_functions as codec

    read_environment = codec._is_strict_mode

    def is_strict_mode() -> bool:
        value = _episode_strict.get()
        return read_environment() if value is None else value

    original_handle = Orchestrator.handle

    def handle(self: Orchestrator, context: Any) -> str:
        token = _episode_strict.set(read_environment())
        try:
            return original_handle(self, context)
        finally:
            _episode_strict.reset(token)

    codec._is_strict_mode = is_strict_mode
    Orchestrator.handle = handle  # type: ignore[method-assign]


# --- Replay-path patches (full replay re-runs every earlier event each episode) -------------------
#
# Each patch below replaces an SDK function only if that function's source is byte-for-byte the
# one read when the patch was written (sha256 of `inspect.getsource`, azure-functions-durable
# 1.7.0 / azure-functions 1.26.0, the versions requirements.txt pins). Any other SDK version keeps
# its own code: the patch is skipped, never applied to code nobody has read.

_SOURCES = {
    "TaskOrchestrationExecutor.__init__": "e1ababc6db32ff25",
    "TaskOrchestrationExecutor.execute": "e7dca389542b84a0",
    "TaskOrchestrationExecutor.set_task_value": "50e0da47aa57734c",
    "TaskOrchestrationExecutor.process_event": "b2d36c7a2c419297",
    "TaskOrchestrationExecutor._find_new_events_start_index": "6a8d2ebe45eca306",
    "CallActivityAction.to_json": "34b27d553f7b4661",
    "DurableOrchestrationContext._add_to_actions": "6815b4f15f158c29",
    "TaskBase.set_is_played": "3ef2995b09cfc25d",
    "TaskBase.set_value": "50d7f8f5b6ea9e53",
    "TaskBase.change_state": "a4e297c9430cccf8",
    "TaskBase.propagate": "b71232756da16781",
    "df_dumps": "c16d08d32e738d67",
    "df_loads": "80deb200792cfdcb",
    "_loads_with_expected_type": "fa8eb68e37931031",
    "_loads_strict_no_type": "69357d706e0bf992",
    "_is_compatible": "c57fb8f39891eb20",
}

# What was applied, by name (the test suite checks the pinned SDK gets all of them), and what each
# replaced: (owner, attribute, the SDK's value), so a test can run the SDK's own code beside it.
applied: list[str] = []
replaced: list[tuple[Any, str, Any]] = []


def _replace(owner: Any, name: str, value: Any) -> None:
    replaced.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


def _source_matches(*functions: Any) -> bool:
    for fn in functions:
        try:
            digest = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
        except (OSError, TypeError):
            return False
        if _SOURCES.get(fn.__qualname__) != digest:
            log.debug("devhost: %s is not the SDK source read for sdk_speedups; not patched", fn.__qualname__)
            return False
    return True


def _patch_replay() -> None:
    _cache_codec()
    _fast_executor()
    _fast_activity_to_json()
    _fast_add_to_actions()


# Bounds of the codec caches: only short texts/values are kept, and a full cache is emptied (the
# next episode refills it). At most about 2 x 32,768 x 128 characters each.
_CACHE_ENTRIES = 32_768
_CACHE_TEXT = 128
_MISS = object()
# Values json.loads returns that are immutable (Python data model, "Objects, values and types":
# for immutable types, an operation that computes a new value may return a reference to any
# existing object with the same type and value, so sharing one is not observable as a difference).
_IMMUTABLE_DECODED = frozenset({str, int, float, bool, type(None)})
# Inputs whose df_dumps text depends only on (type, value). float is left out: 0.0 == -0.0 with
# the same hash but they encode differently.
_IMMUTABLE_ENCODED = frozenset({str, int, bool, type(None)})
_ACTION_MODULES = (
    "CallActivityAction",
    "CallActivityWithRetryAction",
    "CallSubOrchestratorAction",
    "CallSubOrchestratorWithRetryAction",
    "CallEntityAction",
    "SignalEntityAction",
    "ContinueAsNewAction",
)


def _cache_codec() -> None:
    """Decode each earlier result, and encode each re-created action's input, once — for immutable values.

    A full replay calls `df_loads(Result, expected_type=...)` for every earlier completion
    (`TaskOrchestrationExecutor.set_task_value`) and `df_dumps(input_)` for every re-created action
    (`CallActivityAction.__init__` and the other actions), each building a new JSON encoder or
    decoder (`json.loads(s, object_hook=...)`, `json.dumps(v, default=...)`): about 5 µs per
    earlier activity per episode, for the same text and value every time.

    Why the cached answer is the SDK's answer (azure/functions/_durable_functions.py):

    - `df_loads(s, None)` is `json.loads(s, object_hook=_deserialize_custom_object)` (loose) or
      `json.loads(s)` plus an envelope check on a dict (strict). When the result is a str, int,
      float, bool or None the text holds no JSON object, so the hook never ran, the strict check
      cannot fire, and the value is a function of `s` alone, in either mode. Its one side effect,
      the one-shot `_notify_no_expected_type()`, is still called on a cache hit.
    - `df_loads(s, T)` with `T` a plain class (metaclass `type`, so `isinstance` is the builtin
      check) parses `s` once, and for a non-envelope value that `isinstance(value, T)` returns
      it (strict) or parses again with the hook (loose; no object, same value). Only such
      compatible values are cached; an incompatible one still goes to the SDK every time, which
      logs its warning (loose) or raises (strict) every time.
    - `df_dumps(v)` of an exact str, int, bool or None is `json.dumps(v)` in either mode (none has
      `to_json`; `default=` is never called for them): a function of (type, value). Keying on the
      type keeps `True` and `1` apart.
    - Mutable results (lists, dicts, custom objects) are never cached: each replay gets a fresh
      object, so an orchestrator that mutates a result does not see its change in the next
      episode. Only successful calls are cached; exceptions are raised by the SDK every time.

    Patched where the replay path calls them (the executor's and the action modules' bindings),
    not in the codec module: activities, entities and clients call the SDK's own functions."""
    from azure.functions import _durable_functions as codec

    original_loads = codec.df_loads
    original_dumps = codec.df_dumps
    if not _source_matches(
        original_loads,
        original_dumps,
        codec._loads_with_expected_type,
        codec._loads_strict_no_type,
        codec._is_compatible,
    ):
        return
    executor_module = importlib.import_module("azure.durable_functions.models.TaskOrchestrationExecutor")
    action_modules = [
        importlib.import_module(f"azure.durable_functions.models.actions.{name}") for name in _ACTION_MODULES
    ]
    if executor_module.df_loads is not original_loads or any(m.df_dumps is not original_dumps for m in action_modules):
        return  # the SDK does not use the centralized codec (older azure-functions): leave it

    loaded: dict[tuple[str, Any], Any] = {}
    dumped: dict[tuple[type, Any], str] = {}

    def df_loads(s: Any, expected_type: Any = None) -> Any:
        if type(s) is not str or len(s) > _CACHE_TEXT or not (expected_type is None or type(expected_type) is type):
            return original_loads(s, expected_type=expected_type)
        key = (s, expected_type)
        value = loaded.get(key, _MISS)
        if value is not _MISS:
            if expected_type is None:
                codec._notify_no_expected_type()
            return value
        value = original_loads(s, expected_type=expected_type)
        if type(value) in _IMMUTABLE_DECODED and (expected_type is None or isinstance(value, expected_type)):
            if len(loaded) >= _CACHE_ENTRIES:
                loaded.clear()
            loaded[key] = value
        return value

    def df_dumps(value: Any) -> str:
        kind = type(value)
        if kind not in _IMMUTABLE_ENCODED or (kind is str and len(value) > _CACHE_TEXT):
            return original_dumps(value)  # type: ignore[no-any-return]
        key = (kind, value)
        text = dumped.get(key)
        if text is None:
            text = original_dumps(value)
            if len(dumped) >= _CACHE_ENTRIES:
                dumped.clear()
            dumped[key] = text
        return text

    _replace(executor_module, "df_loads", df_loads)
    for module in action_modules:
        _replace(module, "df_dumps", df_dumps)
    applied.append("codec")


def _fast_executor() -> None:
    """The executor's per-event loop without its per-event indirections.

    `TaskOrchestrationExecutor.execute` replays every event of the history: per event it reads
    the `event_type` property up to three times, compares it with `HistoryEventType` members
    (an enum class attribute lookup each, ~0.1 µs), and evaluates `has_execution_completed`
    (three nested properties); `_find_new_events_start_index` walks the whole history first.
    That is ~1 µs per event per episode, a quarter of a 1,000-step chain's replay.

    The replacements do the same steps in the same order with the same objects:

    - `_find_new_events_start_index` returns the index of the last OrchestratorStarted (-1 if
      none), found from the end instead of the start. `HistoryEvent.event_type` is a plain
      attribute read, so reading it for fewer events changes nothing.
    - `process_event` reads `event_type` once (the SDK reads the same property again in two of
      its branches) and compares it with the members' values bound once (they are IntEnum
      members, `==` is int equality). ORCHESTRATOR_STARTED, EXECUTION_STARTED and completion
      events run the SDK's statements; CONTINUE_AS_NEW and EVENT_SENT (rare) call the SDK's own
      method.
    - `execute` is the SDK's body for a generator orchestrator with `has_execution_completed`
      inlined (`orchestrator_returned or context.will_continue_as_new or exception is not
      None`, the same reads in the same order). A history shorter than two events or a
      non-generator function goes to the SDK's own `execute`, given the already evaluated
      function result (the user function is called once, as in the SDK).
    - `set_task_value` for the common case — a successful completion of one open task that is
      not an entity call — is the SDK's statements without the closure it defines per call:
      the same pop, the same `parse_history_event` branches (through the executor module's
      `df_loads`, looked up per call as the SDK's code does), then for an `AtomicTask` (not a
      subclass) the statements of `set_is_played` and `set_value` inlined, else those calls.
      A failure, an entity response, a list of tasks under one id and an
      unknown id (the SDK's duplicate-completion warning and deferral) go to the SDK's method,
      before anything is changed.
    - `__init__` builds the `SetTaskValuePayload` namedtuple class once instead of per executor
      (40 µs per episode): each executor still gets its own dict and set, holding the same
      immutable (event type, (is_success, id key)) pairs.
    - A subclass of the executor gets the SDK's methods.

    Not replaced: `resume_user_code` (its frame is in the traceback of every exception user
    code raises, which devhost reports as the failure details). An exception the SDK itself
    raises inside the replay loop (a result that cannot be decoded) has these functions' frames
    in its traceback instead of the SDK's; its type and message are the SDK's."""
    from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
    from azure.durable_functions.models.Task import AtomicTask, TaskBase, TaskState
    from azure.durable_functions.models.TaskOrchestrationExecutor import TaskOrchestrationExecutor as Executor

    original_init = Executor.__init__
    original_execute = Executor.execute
    original_process_event = Executor.process_event
    original_find = Executor._find_new_events_start_index
    original_set_task_value = Executor.set_task_value
    if not _source_matches(
        original_init,
        original_execute,
        original_process_event,
        original_find,
        original_set_task_value,
        TaskBase.set_is_played,
        TaskBase.set_value,
        TaskBase.change_state,
        TaskBase.propagate,
    ):
        return
    executor_module = importlib.import_module("azure.durable_functions.models.TaskOrchestrationExecutor")
    payloads = Executor().event_to_SetTaskValuePayload  # built once by the SDK's own __init__

    orchestrator_started = HistoryEventType.ORCHESTRATOR_STARTED
    continue_as_new = HistoryEventType.CONTINUE_AS_NEW
    execution_started = HistoryEventType.EXECUTION_STARTED
    event_sent = HistoryEventType.EVENT_SENT

    def _find_new_events_start_index(self: Executor, history: Any) -> int:
        if type(self) is not Executor or type(history) is not list:
            return original_find(self, history)  # type: ignore[no-any-return]
        for i in range(len(history) - 1, -1, -1):
            if history[i].event_type == orchestrator_started:
                return i
        return -1

    def process_event(self: Executor, event: Any) -> None:
        if type(self) is not Executor:
            return original_process_event(self, event)  # type: ignore[no-any-return]
        event_type = event.event_type
        if event_type == orchestrator_started:
            timestamp = event.timestamp
            if timestamp > self.context.current_utc_datetime:
                self.context.current_utc_datetime = event.timestamp
        elif event_type == continue_as_new:
            original_process_event(self, event)
        elif event_type == execution_started:
            self.resume_user_code()
        elif event_type == event_sent:
            original_process_event(self, event)
        elif event_type in self.task_completion_events:
            (is_success, id_key) = self.event_to_SetTaskValuePayload[event_type]
            self.set_task_value(event, is_success, id_key)
            self.resume_user_code()
        return None

    sub_orchestration_completed = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED
    task_completed = HistoryEventType.TASK_COMPLETED
    event_raised = HistoryEventType.EVENT_RAISED
    succeeded = TaskState.SUCCEEDED

    def __init__(self: Executor) -> None:
        if type(self) is not Executor:
            original_init(self)
            return
        self.event_to_SetTaskValuePayload = dict(payloads)
        self.task_completion_events = set(self.event_to_SetTaskValuePayload.keys())
        self.initialize()

    def set_task_value(self: Executor, event: Any, is_success: bool, id_key: str) -> None:
        key = getattr(event, id_key)
        open_tasks = self.context.open_tasks
        task = open_tasks.get(key)  # a defaultdict: .get adds nothing
        if (
            type(self) is not Executor
            or not is_success
            or task is None
            or isinstance(task, list)
            or task._api_name == "CallEntityAction"
        ):
            original_set_task_value(self, event, is_success, id_key)
            return
        del open_tasks[key]
        # parse_history_event, as the SDK defines it inside set_task_value
        event_type = event.event_type
        if event_type is None:
            raise ValueError("EventType is not found in task object")
        expected_type = getattr(task, "_expected_output_type", None)
        if event_type == sub_orchestration_completed and event.Result is not None:
            new_value = executor_module.df_loads(event.Result, expected_type=expected_type)
        elif event_type == task_completed and event.Result is not None:
            new_value = executor_module.df_loads(event.Result, expected_type=expected_type)
        elif event_type == event_raised and event.Input is not None:
            new_value = executor_module.df_loads(event.Input, expected_type=expected_type)
        else:
            new_value = None
        is_played = event._is_played or not self._is_processing_new_events
        if type(task) is AtomicTask:
            # TaskBase.set_is_played, then set_value(is_error=False): change_state(SUCCEEDED) (which
            # only refuses RUNNING), the result, and propagate() to a parent now that it completed.
            task.is_played = is_played
            task.state = succeeded
            task.result = new_value
            if task.parent is not None:
                task.parent.handle_completion(task)
        else:
            task.set_is_played(is_played)
            task.set_value(is_error=False, value=new_value)

    def execute(self: Executor, context: Any, history: Any, fn: Any) -> str:
        if type(self) is not Executor:
            return original_execute(self, context, history, fn)  # type: ignore[no-any-return]
        self.context = context
        evaluated_user_code = fn(context)
        if len(history) < 2 or not isinstance(evaluated_user_code, GeneratorType):
            return original_execute(self, context, history, lambda _context: evaluated_user_code)  # type: ignore[no-any-return]
        start = self._new_events_start_index = self._find_new_events_start_index(history)
        execution_started_event = history[1]
        history_is_replaying = start > 0
        self.current_task.is_played = execution_started_event.is_played or history_is_replaying
        self.generator = evaluated_user_code
        process = self.process_event
        for index, event in enumerate(history):
            if index >= start:
                self._is_processing_new_events = True
            process(event)
            if self.orchestrator_returned or context.will_continue_as_new or self.exception is not None:
                break
        return self.get_orchestrator_state_str()  # type: ignore[no-any-return]

    _replace(Executor, "__init__", __init__)
    _replace(Executor, "set_task_value", set_task_value)
    _replace(Executor, "_find_new_events_start_index", _find_new_events_start_index)
    _replace(Executor, "process_event", process_event)
    _replace(Executor, "execute", execute)
    applied.append("executor")


def _fast_activity_to_json() -> None:
    """`CallActivityAction.to_json` without three `hasattr`/`getattr` pairs per action per episode.

    The SDK builds {"actionType", "functionName", "input"} with `add_attrib`, which adds a key only
    if the attribute exists. For a `CallActivityAction` itself (not a subclass) `action_type` is a
    property that always returns `ActionType.CALL_ACTIVITY`, and `function_name`/`input_` are
    instance attributes set by `__init__` (no class attribute or descriptor of those names), so
    the same dict, in the same key order with the same objects, is built from the instance dict;
    if either was deleted the SDK's method runs."""
    from azure.durable_functions.models.actions.ActionType import ActionType
    from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction

    original = CallActivityAction.to_json
    if not _source_matches(original):
        return
    call_activity = ActionType.CALL_ACTIVITY

    def to_json(self: CallActivityAction) -> dict[str, Any]:
        if type(self) is CallActivityAction:
            attributes = self.__dict__
            if "function_name" in attributes and "input_" in attributes:
                return {
                    "actionType": call_activity,
                    "functionName": attributes["function_name"],
                    "input": attributes["input_"],
                }
        return original(self)

    _replace(CallActivityAction, "to_json", to_json)
    applied.append("to_json")


def _fast_add_to_actions() -> None:
    """`DurableOrchestrationContext._add_to_actions` without two `Enum.value` reads per action.

    The SDK appends a task's action to the V1 or V2 payload after checking
    `self._replay_schema.value >= ReplaySchema.V2.value` (two enum property reads, ~0.3 µs, once
    per re-created action per episode). With ReplaySchema's members exactly V1=0, V2=1, V3=2
    (checked here), that test is "the schema is V2 or V3": the same appends under the same
    conditions. Whatever the SDK would refuse (continue-as-new already called, a payload of the
    wrong shape, any other schema or a subclass of the context) goes to the SDK's method."""
    from azure.durable_functions.models.actions.Action import Action
    from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext as Context
    from azure.durable_functions.models.ReplaySchema import ReplaySchema

    original = Context._add_to_actions
    if not _source_matches(original):
        return
    if [(m.name, m.value) for m in ReplaySchema] != [("V1", 0), ("V2", 1), ("V3", 2)]:
        return
    v1, v2, v3 = ReplaySchema.V1, ReplaySchema.V2, ReplaySchema.V3

    def _add_to_actions(self: Context, action_repr: Any) -> None:
        if type(self) is Context and not self.will_continue_as_new:
            schema = self._replay_schema
            if schema is v1:
                if isinstance(action_repr, list):
                    self._action_payload_v1.append(action_repr)
                    return
            elif (schema is v2 or schema is v3) and isinstance(action_repr, Action):
                self._action_payload_v2.append(action_repr)
                return
        original(self, action_repr)

    _replace(Context, "_add_to_actions", _add_to_actions)
    applied.append("add_to_actions")
