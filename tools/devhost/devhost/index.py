"""Find the app's durable functions the way the Functions host does: by trigger binding.

The registered name is the binding's `orchestration` / `activity` / `entityName`
property when set, else the function name; the Durable extension resolves names
case-insensitively (entity names are lower-cased), so lookups here do too.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"


@dataclass(frozen=True)
class FunctionInfo:
    """One indexed function: its registered name, the callable the host invokes, and bindings."""

    name: str
    function_name: str
    kind: str
    handler: Callable[..., Any]
    trigger_param: str
    bindings: tuple[dict[str, Any], ...]
    function: Any = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)


@dataclass
class AppIndex:
    orchestrators: dict[str, FunctionInfo] = field(default_factory=dict)
    activities: dict[str, FunctionInfo] = field(default_factory=dict)
    entities: dict[str, FunctionInfo] = field(default_factory=dict)
    others: dict[str, FunctionInfo] = field(default_factory=dict)

    def orchestrator(self, name: str) -> FunctionInfo | None:
        return self.orchestrators.get(name.lower())

    def activity(self, name: str) -> FunctionInfo | None:
        return self.activities.get(name.lower())

    def entity(self, name: str) -> FunctionInfo | None:
        return self.entities.get(name.lower())

    @classmethod
    def from_app(cls, app: Any) -> AppIndex:
        """Index a `FunctionApp`/`DFApp` (anything with `get_functions()`).

        `get_functions()` may be called only once per app (the SDK records names and
        rejects a second call as duplicates, as the worker calls it once), so the
        index is built once and reused."""
        try:
            return _INDEXES[app]
        except (KeyError, TypeError):
            pass
        index = cls._build(app)
        try:
            _INDEXES[app] = index
        except TypeError:
            pass
        return index

    @classmethod
    def _build(cls, app: Any) -> AppIndex:
        index = cls()
        for fn in app.get_functions():
            bindings = tuple(_binding_dict(b) for b in fn.get_bindings())
            function_name = fn.get_function_name()
            handler = fn.get_user_function()
            trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
            if trigger is None:
                continue
            ttype = trigger["type"]
            if ttype == ORCHESTRATION_TRIGGER:
                name = trigger.get("orchestration") or function_name
                table = index.orchestrators
            elif ttype == ACTIVITY_TRIGGER:
                name = trigger.get("activity") or function_name
                table = index.activities
            elif ttype == ENTITY_TRIGGER:
                name = (trigger.get("entityName") or function_name).lower()
                table = index.entities
            else:
                name = function_name
                table = index.others
            info = FunctionInfo(
                name=name,
                function_name=function_name,
                kind=ttype,
                handler=handler,
                trigger_param=trigger.get("name", ""),
                bindings=bindings,
                function=fn,
            )
            key = name.lower()
            if key in table:
                raise ValueError(f"two functions are registered as {ttype} {name!r}")
            table[key] = info
        return index


_INDEXES: weakref.WeakKeyDictionary[Any, AppIndex] = weakref.WeakKeyDictionary()


def _binding_dict(binding: Any) -> dict[str, Any]:
    raw = binding.get_dict_repr() if hasattr(binding, "get_dict_repr") else dict(vars(binding))
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[key] = getattr(value, "value", value) if key in ("direction", "authLevel") else value
    return out
