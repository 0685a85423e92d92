"""Memoize the SDK's timestamp parsing: the one hot spot replay cannot avoid.

Every episode replays the whole history, and the SDK builds each `HistoryEvent` with
`dateutil.parser.parse(Timestamp)` — about 100 µs per event, 85% of an episode's
cost. The same strings are parsed again every episode, so an LRU cache around that
exact function returns identical (immutable) datetimes and changes no behaviour.
The Functions host in Azure pays the full cost; devhost only avoids repeating it.
"""

from __future__ import annotations

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
    _applied = True
