"""OpenTelemetry tracing switch: off (and free) unless an OTLP endpoint is configured.

The engine and the server call hooks only as `if tracing.active is not None: ...`, so with
tracing off a hook costs one attribute read and nothing imports `opentelemetry`. `setup()` turns
tracing on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set:
spans go over OTLP (http/protobuf, or gRPC with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) and the
provider becomes the global one, so spans the app makes itself join the same traces. Needs
`pip install 'devhost[otel]'`. Tests call `enable(exporter)` with an in-memory exporter.

What the spans are and where their context is kept: devhost/otel_spans.py.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .otel_spans import Spans

log = logging.getLogger("devhost")

active: Spans | None = None
_checked = False


def endpoint_configured() -> str | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def setup() -> None:
    """Turn tracing on from the environment, once per process (later calls are free)."""
    global _checked, active
    if _checked or active is not None:
        return
    _checked = True
    endpoint = endpoint_configured()
    if not endpoint:
        return
    try:
        from .otel_spans import from_environment
    except ImportError as exc:
        log.warning(
            "devhost: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (%s); "
            "pip install 'devhost[otel]' to export spans",
            exc,
        )
        return
    try:
        active = from_environment()
    except ImportError as exc:
        log.warning("devhost: cannot export spans to %s: %s", endpoint, exc)
        return
    log.info("devhost: exporting OpenTelemetry spans to %s", endpoint)


def enable(exporter: Any) -> Spans:
    """Send spans to `exporter` (a `SpanExporter`) synchronously; for tests and tools."""
    global active
    from .otel_spans import with_exporter

    active = with_exporter(exporter)
    return active


def disable() -> None:
    global active
    spans, active = active, None
    if spans is not None:
        spans.shutdown()


def middlewares() -> list[Any]:
    """The aiohttp middleware that puts a span around every request (none while tracing is off)."""
    setup()
    if active is None:
        return []
    from .otel_spans import http_middleware

    return [http_middleware]
