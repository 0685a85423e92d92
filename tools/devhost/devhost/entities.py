"""The pure entity step: run a batch of operations through the SDK's entity handler.

Legacy entity protocol (docs/durable-protocol.md §4): requests arrive as EventRaised "op" with a
RequestMessage; each non-signal request is answered with an EventRaised named by the
request id, sent back to the calling orchestration.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import history as h
from .entity_messages import parse_request
from .history import EventType, RuntimeStatus
from .index import AppIndex
from .model import Instance, Message

log = logging.getLogger("devhost")


@dataclass
class EntityStepResult:
    instance: Instance | None
    outbound: list[Message] = field(default_factory=list)
    dropped: list[tuple[Message, str]] = field(default_factory=list)
    operations: int = 0


def parse_entity_id(instance_id: str) -> tuple[str, str]:
    """Split `@name@key` at the second `@` (keys may contain `@`, as in the extension)."""
    if not instance_id.startswith("@") or "@" not in instance_id[1:]:
        raise ValueError(f"not an entity id: {instance_id!r}")
    name, key = instance_id[1:].split("@", 1)
    return name, key


def entity_instance_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def _redacted(text: Any) -> str:
    """SanitizeString (EndToEndTraceHelper.cs 61-66): the extension logs a payload's length, not its text."""
    return f"(Redacted {0 if text is None else len(str(text))} characters)"


def _log_failed_operation(entity_id: str, request: dict[str, Any], error: Any, duration: Any) -> None:
    """Every failed operation is an error in the log, signals included, in the extension's words
    (TaskEntityShim.cs 651 -> EndToEndTraceHelper.cs 529-576 OperationFailed): the error (the SDK's JSON text
    of `str(e)`) and input redacted to their lengths as on Azure by default; devhost adds the error itself on
    a continuation line, since locally nobody else would ever hear of a failed signal."""
    name, _key = parse_entity_id(entity_id)
    log.error(
        "%s: Function '%s (Entity)' failed '%s' operation %s after %sms with exception %s. Input: %s. "
        "IsReplay: False.\n  devhost: the operation (%s) raised: %s",
        entity_id,
        name,
        request.get("op") or "",
        request.get("id") or "",
        duration if isinstance(duration, int | float) else 0,
        _redacted(error),
        _redacted(request.get("input")),
        "signal" if request.get("signal") else f"call from {request.get('parent')}",
        _error_text(error),
    )


def _error_text(error: Any) -> str:
    """The SDK sends `str(e)` as JSON text; show the message itself."""
    try:
        decoded = json.loads(error) if isinstance(error, str) else error
    except ValueError:
        decoded = error
    return str(decoded)


def process_entity(
    app: AppIndex, instance: Instance | None, messages: list[Message], now: datetime
) -> EntityStepResult:
    """Apply a batch of requests to one entity. Pure apart from the user's entity code."""
    if not messages:
        return EntityStepResult(instance)
    entity_id = messages[0].instance_id
    name, key = parse_entity_id(entity_id)
    result = EntityStepResult(instance)
    if instance is None:
        instance = Instance(
            instance_id=entity_id,
            name=entity_id,
            runtime_status=RuntimeStatus.RUNNING,
            execution_id="",
            created_time=now,
            last_updated_time=now,
        )
        result.instance = instance
    handled = instance.engine.handled
    requests: list[tuple[Message, dict[str, Any]]] = []
    for msg in messages:
        ev = msg.event
        if ev["EventType"] != EventType.EVENT_RAISED or not str(ev.get("Name", "")).startswith("op"):
            result.dropped.append((msg, f"entities only take operation requests, not {h.event_name(ev)}"))
            continue
        request = parse_request(ev.get("Input"))
        if request is None:
            result.dropped.append((msg, "request message is not JSON"))
            continue
        rid = request.get("id") or msg.id
        if rid in handled:
            result.dropped.append((msg, f"request {rid} already handled"))
            continue
        handled.append(rid)
        requests.append((msg, request))
    del handled[:-500]
    if not requests:
        return result

    info = app.entity(name)
    batch = [
        {"name": req.get("op") or "", "input": req.get("input"), "isSignal": bool(req.get("signal"))}
        for _, req in requests
    ]
    outcomes: list[tuple[bool, str]]
    durations: list[Any] = []
    batch_failed = False  # logged once for the batch, not per operation
    if info is None:
        error = f"The function '{name}' doesn't exist, is disabled, or is not an entity function."
        outcomes = [(True, json.dumps(error)) for _ in requests]
    else:
        context = {
            "self": {"name": name, "key": key},
            "exists": instance.entity_exists,
            "state": instance.entity_state,
            "batch": batch,
        }
        try:
            out = json.loads(info.handler(json.dumps(context)))
        except Exception as exc:  # the whole batch failed (e.g. an operation without a name)
            # Azure (inferred: ExecuteOutOfProcBatch, AbortOnInternalError) would not commit the batch
            # and retry it forever, callers never answered; devhost answers each caller with the error.
            log.error(
                "devhost: the operation batch of entity %s failed as a whole (%s: %s); its state is "
                "unchanged and each caller gets the error. On Azure this batch would be retried "
                "without end and callers would never get a reply.",
                entity_id,
                type(exc).__name__,
                exc,
            )
            outcomes = [(True, json.dumps(f"{type(exc).__name__}: {exc}")) for _ in requests]
            batch_failed = True
        else:
            instance.entity_exists = bool(out.get("entityExists"))
            instance.entity_state = out.get("entityState") if instance.entity_exists else None
            outcomes = [(bool(r.get("isError")), r.get("result")) for r in out.get("results", [])]
            durations = [r.get("duration") for r in out.get("results", [])]
    result.operations = len(requests)
    for i, ((_msg, request), (is_error, value)) in enumerate(zip(requests, outcomes)):
        if is_error and not batch_failed:
            _log_failed_operation(entity_id, request, value, durations[i] if i < len(durations) else 0)
        if request.get("signal") or not request.get("parent"):
            continue
        response: dict[str, Any] = {"result": value}
        if is_error:
            response["exceptionType"] = "Error"
        reply = h.event_raised(now, request["id"], json.dumps(response))
        result.outbound.append(
            Message(request["parent"], reply, execution_id=request.get("parentExecution"), sender=entity_id)
        )
    instance.last_updated_time = now
    return result
