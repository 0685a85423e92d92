"""The entity request message, read back: one parser for the JSON an orchestration sends to an entity.

An entity call or signal is recorded as EventSent (and delivered as EventRaised "op") whose Input is the
legacy RequestMessage JSON (docs/durable-protocol.md §4): `{"id", "op", "signal", "input", "parent", ...}`.
The engine (duplicate detection, nondeterminism checks), the entity step, fork and the replay checker all
read it; they read it here so that a malformed or non-object Input means the same thing everywhere.
"""

from __future__ import annotations

import json
from typing import Any


def parse_request(text: Any) -> dict[str, Any] | None:
    """The request as a dict (without the .NET `$type` hint), or None when `text` is not a JSON object.

    `text` is the event's Input: JSON text, or an already parsed value (HTTP histories parse inputs)."""
    if isinstance(text, (str, bytes)):
        try:
            value = json.loads(text)
        except ValueError:
            return None
    else:
        value = text
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if k != "$type"}


def request_id(text: Any) -> str | None:
    """The request id (the name of the response event), if the message has one."""
    request = parse_request(text)
    return request.get("id") if request is not None else None


def request_op(text: Any) -> str | None:
    """The operation name, if the message has one."""
    request = parse_request(text)
    return request.get("op") if request is not None else None
