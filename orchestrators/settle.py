"""Fan out and collect every outcome, not just the first failure.

`task_all` raises on the first failed task; a rollout needs each target's result,
so after the fan-in each task is awaited on its own to read its value or error.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df


def settle(context: df.DurableOrchestrationContext, tasks: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """Yield from this: returns {key: ("ok", value) | ("error", exception)}."""
    if not tasks:
        return {}
    try:
        yield context.task_all(list(tasks.values()))
    except Exception:  # noqa: BLE001 - individual errors are read below
        pass
    outcomes: dict[str, Any] = {}
    for key, task in tasks.items():
        try:
            outcomes[key] = ("ok", (yield task))
        except Exception as error:  # noqa: BLE001 - recorded per target
            outcomes[key] = ("error", error)
    return outcomes
