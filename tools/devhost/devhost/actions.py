"""The SDK's action list (docs/durable-protocol.md §2.3-§2.4): action types and flattening (words: describe.py)."""

from __future__ import annotations

import enum
from typing import Any

Action = dict[str, Any]


class ActionType(enum.IntEnum):
    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    SCHEDULED_SIGNAL_ENTITY = 10
    WHEN_ANY = 11
    WHEN_ALL = 12


COMPOUND = frozenset({ActionType.WHEN_ANY, ActionType.WHEN_ALL})
ACTIVITY_TYPES = frozenset({ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY})
SUB_ORCHESTRATOR_TYPES = frozenset({ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY})
ENTITY_TYPES = frozenset({ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY})
HTTP_ACTIVITY_NAME = "BuiltIn::HttpActivity"


def action_type(action: Action) -> int:
    raw = action.get("actionType")
    if isinstance(raw, str):  # the extension also accepts enum names
        return int(ActionType[_snake(raw)])
    return int(raw) if raw is not None else -1


def _snake(name: str) -> str:
    out: list[str] = []
    for ch in name:
        if ch.isupper() and out:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def flatten(actions: list[Any]) -> list[Action]:
    """Depth-first list of atomic actions; its order equals the order of sequence numbers.

    V2/V3 payloads are `[[a0, a1, ...]]`; V1 is a list of lists. Containers
    (WhenAll/WhenAny) contribute only their children.
    """
    out: list[Action] = []

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for sub in item:
                walk(sub)
        elif isinstance(item, dict):
            if action_type(item) in COMPOUND:
                walk(item.get("compoundActions") or [])
            else:
                out.append(item)

    walk(actions)
    return out
