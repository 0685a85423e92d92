"""The status payloads the Durable HTTP API and the dashboard answer with (docs/durable-protocol.md §6.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..history import EVENT_NAMES, Event, RuntimeStatus
from ..jsontext import parse_json_text
from ..model import Instance


def format_time(value: datetime | None) -> str | None:
    """`yyyy-MM-ddTHH:mm:ssZ`, the extension's status-payload format."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_precise_time(value: datetime) -> str:
    """A DateTime as Json.NET writes it: seconds with up to seven fraction digits, trailing zeros dropped."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def _render_history(events: list[Event], show_input: bool, show_output: bool) -> list[dict[str, Any]]:
    """historyEvents per §6.3; the rendering lives in devhost.history_view (imported lazily
    so the server works while that module is missing, with a plain fallback)."""
    try:
        from ..history_view import to_http_history  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _fallback_history(events, show_input)
    return list(to_http_history(events, show_input=show_input, show_output=show_output))


def _fallback_history(events: list[Event], show_input: bool) -> list[dict[str, Any]]:
    out = []
    for event in events:
        etype = event.get("EventType")
        if etype in (12, 13):  # OrchestratorStarted / OrchestratorCompleted
            continue
        item = {k: v for k, v in event.items() if k not in ("EventId", "IsPlayed")}
        item["EventType"] = EVENT_NAMES.get(etype, str(etype)) if isinstance(etype, int) else etype
        if not show_input:
            item.pop("Input", None)
        out.append(item)
    return out


def status_payload(
    inst: Instance, *, show_input: bool = True, show_history: bool = False, show_history_output: bool = False
) -> dict[str, Any]:
    """The §6.3 status object for one instance."""
    body: dict[str, Any] = {
        "name": inst.name,
        "instanceId": inst.instance_id,
        "runtimeStatus": inst.runtime_status.value,
        "input": parse_json_text(inst.input) if show_input else None,
        "customStatus": parse_json_text(inst.custom_status),
        "output": parse_json_text(inst.output),
        "createdTime": format_time(inst.created_time),
        "lastUpdatedTime": format_time(inst.last_updated_time),
    }
    if show_history and inst.runtime_status != RuntimeStatus.PENDING:
        body["historyEvents"] = _render_history(inst.history, show_input, show_history_output)
    return body
