"""Memoize what the SDK recomputes on every replay: timestamp parsing and the codec's mode check.

Every episode replays the whole history, and the SDK builds each `HistoryEvent` with
`dateutil.parser.parse(Timestamp)` — about 100 µs per event, 85% of an episode's
cost. The same strings are parsed again every episode, so an LRU cache around that
exact function returns identical (immutable) datetimes and changes no behaviour.
The Functions host in Azure pays the full cost; devhost only avoids repeating it.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
from datetime import datetime
from typing import Any

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
