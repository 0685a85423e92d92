"""Recordings: the histories a replay reads, in the two formats the checker accepts.

* full (`FULL`): DTFx events as the store keeps them (`history_view.export_instance`, or a list of events
  from any DTFx host), with EventIds and OrchestratorStarted episode boundaries. Exact.
* HTTP (`HTTP`): the Durable HTTP API's `historyEvents` (or a whole status payload holding them): no
  sequence numbers, no episode boundaries. What you can get from a deployed app.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..history import Event, EventType
from ..history_view import ORCHESTRATION_STATUS_NAMES, event_type_of

FULL = "full"
HTTP = "http"


@dataclass
class Recording:
    """A parsed recording: its format, its events (types normalized) and what the container said about it."""

    format: str
    events: list[Event]
    instance_id: str | None = None
    name: str | None = None
    execution_id: str | None = None
    # HTTP status payloads: the instance input as the payload shows it (parsed JSON), if present.
    payload_input: Any = None
    has_payload_input: bool = False
    # The version the instance runs under (`context.version`), when the recording does not carry it: the HTTP
    # view drops ExecutionStarted's Version, so `replay_history(..., version=)` supplies it.
    version: str | None = None


def load_recording(source: Any) -> Recording:
    """Parse a recording: a dict/list, JSON text, or a path to a JSON file.

    Accepted shapes: the full export (`{"instanceId", "name", "executionId", "input", "history"}`), a bare list
    of DTFx events (int or name EventType), an HTTP status payload (`{"historyEvents": [...], ...}`) or a bare
    `historyEvents` list. Full vs HTTP is told apart by content, not by the container: full histories carry
    `EventId`s and OrchestratorStarted events, the HTTP view has neither.
    """
    data = source
    if isinstance(source, os.PathLike):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    elif isinstance(source, (str, bytes)):
        text = source.decode() if isinstance(source, bytes) else source
        if text.lstrip()[:1] in ("{", "["):
            data = json.loads(text)
        else:
            data = json.loads(Path(text).read_text(encoding="utf-8"))

    meta: dict[str, Any] = {}
    if isinstance(data, dict):
        if "historyEvents" in data:
            raw = data.get("historyEvents")
            if raw is None:
                raise ValueError(
                    "the status payload has no history: fetch it with "
                    "showHistory=true&showHistoryOutput=true&showInput=true"
                )
        elif "history" in data:
            raw = data.get("history")
        else:
            raise ValueError(
                "a recording must be a list of history events, a devhost export with 'history', "
                "or an HTTP status payload with 'historyEvents'"
            )
        meta = data
    elif isinstance(data, list):
        raw = data
    else:
        raise ValueError(f"a recording must be a JSON object or list, not {type(data).__name__}")
    if not isinstance(raw, list) or not all(isinstance(ev, dict) for ev in raw):
        raise ValueError("the history must be a list of event objects")

    is_full = any("EventId" in ev for ev in raw) or any(
        event_type_of(ev) == EventType.ORCHESTRATOR_STARTED for ev in raw
    )
    rec = Recording(
        format=FULL if is_full else HTTP,
        events=[_normalize(ev, full=is_full) for ev in raw],
        instance_id=meta.get("instanceId"),
        name=meta.get("name"),
        execution_id=meta.get("executionId"),
    )
    if "historyEvents" in meta and "input" in meta:
        rec.payload_input = meta["input"]
        rec.has_payload_input = True
    if not rec.events:
        raise ValueError("the recording has no events")
    return rec


def _normalize(ev: Event, *, full: bool) -> Event:
    out = dict(ev)
    out["EventType"] = event_type_of(ev)
    if "Timestamp" not in out:
        raise ValueError(f"history event without a Timestamp: {ev!r}")
    if full:
        out.setdefault("EventId", -1)
        out["IsPlayed"] = False  # delivered events are new to the episode that receives them
    status = out.get("OrchestrationStatus")
    if isinstance(status, str):
        by_name = {name: num for num, name in ORCHESTRATION_STATUS_NAMES.items()}
        if status in by_name:
            out["OrchestrationStatus"] = by_name[status]
    return out
