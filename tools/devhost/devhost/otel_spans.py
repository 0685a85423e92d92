"""The spans devhost emits, shaped like the Durable extension's distributed tracing V2.

With `"tracing": {"distributedTracingEnabled": true, "version": "V2"}` the extension exports the
spans of DTFx's `TraceHelper` (ActivitySource "DurableTask.Core"; azure-functions-durable-extension
src/WebJobs.Extensions.DurableTask/Correlation/TelemetryActivator.cs:72). Names, kinds and
attributes here follow Azure/durabletask src/DurableTask.Core/Tracing/TraceHelper.cs (cited as
TraceHelper.cs:line below), Schema.cs and TraceActivityConstants.cs:

| span | kind | when | TraceHelper.cs |
|---|---|---|---|
| `create_orchestration:{name}` | PRODUCER | a client starts an instance | 45-85 |
| `orchestration:{name}` | SERVER | the execution, first episode to its end | 103-181 |
| `activity:{name}` | CLIENT | the orchestration sees the result: scheduled -> completed | 233-316 |
| `activity:{name}` | SERVER | the activity function runs | 192-222 |
| `orchestration:{name}` | CLIENT | the parent sees a sub-orchestration's result | 327-407 |
| `orchestration:{name}:timer` | INTERNAL | a timer fired | 485-507 |
| `entity:{name}:{op}` | CLIENT / PRODUCER | an orchestration calls / signals an entity | 523-551 |
| `entity:{name}:{op}` | SERVER / CONSUMER | the entity runs the operation | 601-676 |

plus one SERVER span per HTTP request (`{method} {route}`, OpenTelemetry HTTP semantic
conventions), whose context user code sees, so the SDK client's `traceparent` header
(azure/durable_functions/models/utils/http_utils.py) links a starter function to what it starts.

Trace context is kept in history exactly where DTFx keeps it, so it survives episodes, cache
evictions and restarts with nothing held in memory:

- ExecutionStarted `ParentTraceContext` = {TraceParent, TraceState, Id, SpanId, ActivityStartTime}
  (DistributedTraceContext.cs): TraceParent is the `create_orchestration` span (or the parent's
  client span for a sub-orchestration); SpanId/Id/ActivityStartTime are the execution's own span,
  fixed in its first episode (TraceHelper.cs:167-177), so every episode continues the same span.
- TaskScheduled `ParentTraceContext`: (trace, a fresh client span id) (TaskOrchestrationDispatcher.cs:1199-1205).
- SubOrchestrationInstanceCreated `ClientSpanId`, and the child's ExecutionStarted `ParentTraceContext`
  pointing at it (TaskOrchestrationDispatcher.cs:1323-1329).
- An entity request's EventRaised `ParentTraceContext`: the calling orchestration's span
  (TaskEntityDispatcher.cs:1053-1056).

Spans are recorded when the work is done (with explicit start and end times), never held open
across awaits, so a crash loses at most the spans of work that is redone anyway.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import history as h
from .entity_messages import parse_request
from .history import Event, EventType, RuntimeStatus
from .model import Instance, Message
from .server.http_functions import HTTP_ROUTE

SOURCE = "DurableTask.Core"  # DTFx's ActivitySource name (TraceHelper.cs:34)

# Schema.cs
TYPE = "durabletask.type"
NAME = "durabletask.task.name"
VERSION = "durabletask.task.version"
INSTANCE_ID = "durabletask.task.instance_id"
EXECUTION_ID = "durabletask.task.execution_id"
STATUS = "durabletask.task.status"
TASK_ID = "durabletask.task.task_id"
TARGET_INSTANCE_ID = "durabletask.event.target_instance_id"
FIRE_AT = "durabletask.fire_at"
OPERATION = "durabletask.task.operation"
ENTITY_ERROR = "durabletask.entity.error_message"

_COMPLETIONS: dict[int, bool] = {
    EventType.TASK_COMPLETED: False,
    EventType.TASK_FAILED: True,
    EventType.SUB_ORCHESTRATION_COMPLETED: False,
    EventType.SUB_ORCHESTRATION_FAILED: True,
}


class ChosenIds(RandomIdGenerator):
    """Random ids, except the span id the next span must have (DTFx `Activity.SetSpanId`).

    A span whose id was handed out earlier (a client span id stored in history, an execution's
    own span id) is recorded later, possibly by another process: the id is chosen by us."""

    def __init__(self) -> None:
        self._next = threading.local()

    def choose(self, span_id: int) -> None:
        self._next.span_id = span_id

    def generate_span_id(self) -> int:
        chosen = getattr(self._next, "span_id", None)
        if chosen:
            self._next.span_id = None
            return int(chosen)
        return super().generate_span_id()


def traceparent(trace_id: int, span_id: int, flags: int = 1) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def parse_traceparent(text: Any) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a W3C traceparent, or None if it is not one."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    return (trace_id, span_id, flags) if trace_id and span_id else None


def _new_span_id() -> int:
    return random.getrandbits(64) or 1


def _ns(ts: Any, default: int) -> int:
    if isinstance(ts, str) and ts:
        try:
            return int(h.parse_ts(ts).timestamp() * 1e9)
        except ValueError:
            return default
    return default


def _execution_started(history: list[Event]) -> Event | None:
    for ev in history[:4]:
        if ev.get("EventType") == EventType.EXECUTION_STARTED:
            return ev
    return None


def _trace_state(ptc: Mapping[str, Any]) -> str | None:
    state = ptc.get("TraceState")
    return state if isinstance(state, str) and state else None


def _entity_name(entity_id: str) -> str:
    return entity_id[1:].split("@", 1)[0] if entity_id.startswith("@") else entity_id


class Spans:
    """Records devhost's spans on a TracerProvider whose id generator is `ChosenIds`."""

    def __init__(self, provider: TracerProvider, ids: ChosenIds) -> None:
        self.provider = provider
        self.ids = ids
        self.tracer = provider.get_tracer(SOURCE)
        self.http_tracer = provider.get_tracer("devhost.server")

    def shutdown(self) -> None:
        self.provider.shutdown()

    # ---------------------------------------------------------------- recording
    def _record(
        self,
        name: str,
        kind: SpanKind,
        parent: tuple[int, int, int] | None,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any],
        *,
        span_id: int | None = None,
        error: str | None = None,
        ok: str | None = None,
        trace_state: str | None = None,
    ) -> None:
        ctx = otel_context.Context()  # no parent: a root, whatever span is current
        if parent is not None:
            trace_id, parent_span, flags = parent
            state = trace.TraceState.from_header([trace_state]) if trace_state else None
            remote = SpanContext(
                trace_id, parent_span, is_remote=True, trace_flags=TraceFlags(flags), trace_state=state
            )
            ctx = trace.set_span_in_context(NonRecordingSpan(remote))
        if span_id is not None:
            self.ids.choose(span_id)
        span = self.tracer.start_span(
            name,
            context=ctx,
            kind=kind,
            start_time=min(start_ns, end_ns),
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        self.ids.choose(0)  # a span the sampler dropped must not leave its id behind
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        elif ok is not None:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=end_ns)

    # ------------------------------------------------------------------- client
    def new_orchestration(self, start: Event) -> None:
        """`create_orchestration:{name}` under the current span (an HTTP request, say); the
        instance's ExecutionStarted keeps it as its ParentTraceContext (TraceHelper.cs:45-85)."""
        now = time.time_ns()
        current = trace.get_current_span().get_span_context()
        span_id = _new_span_id()
        if current.is_valid:
            parent: tuple[int, int, int] | None = (current.trace_id, current.span_id, int(current.trace_flags))
            trace_id, flags = current.trace_id, int(current.trace_flags)
            state = current.trace_state.to_header() or None
        else:
            parent, trace_id, flags, state = None, RandomIdGenerator().generate_trace_id(), 1, None
        oi = start.get("OrchestrationInstance") or {}
        name = start.get("Name") or ""
        if parent is None:  # a new trace: the create span is its root
            self.ids.choose(span_id)
            span = self.tracer.start_span(
                f"create_orchestration:{name}",
                kind=SpanKind.PRODUCER,
                start_time=now,
                attributes={
                    TYPE: "orchestration",
                    NAME: name,
                    INSTANCE_ID: oi.get("InstanceId"),
                    EXECUTION_ID: oi.get("ExecutionId"),
                },
            )
            self.ids.choose(0)
            trace_id = span.get_span_context().trace_id
            span.end(end_time=time.time_ns())
        else:
            self._record(
                f"create_orchestration:{name}",
                SpanKind.PRODUCER,
                parent,
                now,
                time.time_ns(),
                {
                    TYPE: "orchestration",
                    NAME: name,
                    INSTANCE_ID: oi.get("InstanceId"),
                    EXECUTION_ID: oi.get("ExecutionId"),
                },
                span_id=span_id,
                trace_state=state,
            )
        start["ParentTraceContext"] = {"TraceParent": traceparent(trace_id, span_id, flags), "TraceState": state}

    def client_signal(self, event: Event) -> None:
        """A signal sent from a client carries the caller's context, if there is one."""
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            event["ParentTraceContext"] = {
                "TraceParent": traceparent(current.trace_id, current.span_id, int(current.trace_flags)),
                "TraceState": current.trace_state.to_header() or None,
            }

    # ------------------------------------------------------------ orchestration
    @staticmethod
    def execution_started(inst: Instance | None) -> Event | None:
        """Read before a work item: the step replaces the history on continue-as-new."""
        return _execution_started(inst.history) if inst is not None else None

    def after_orchestration(self, old_start: Event | None, result: Any) -> None:
        """After one orchestration work item, before its messages are sent and its checkpoint written:
        give new scheduling events their trace context and record the spans of what completed.
        `old_start` is the ExecutionStarted the instance had before the work item."""
        inst: Instance | None = result.instance
        if inst is None:
            return
        now = time.time_ns()
        history = inst.history
        new_from = 0 if result.history_reset else result.new_events_from
        start = _execution_started(history)
        if (
            start is not None
            and not start.get("ParentTraceContext")
            and old_start is not None
            and old_start is not start
            and old_start.get("ParentTraceContext")
        ):
            # continue-as-new keeps the trace (ExecutionStartedEvent.cs:149, unless GenerateNewTrace)
            old = old_start["ParentTraceContext"]
            start["ParentTraceContext"] = {"TraceParent": old.get("TraceParent"), "TraceState": old.get("TraceState")}
        own = self._execution_span(start, history.index(start) >= new_from, now) if start is not None else None
        for fin_iid, _name, status in result.finished:
            if fin_iid != inst.instance_id:
                continue
            ended = old_start if status == RuntimeStatus.CONTINUED_AS_NEW and old_start is not None else start
            if ended is not None:
                self._orchestration_ended(ended, inst, status, now)
        if own is None:
            return
        trace_id, span_id, flags, state = own
        me = (trace_id, span_id, flags)
        scheduled: dict[int, Event] | None = None
        children: dict[int, str] = {}
        for ev in history[new_from:]:
            t = ev.get("EventType")
            if t == EventType.TASK_SCHEDULED:
                if not ev.get("ParentTraceContext"):  # TaskOrchestrationDispatcher.cs:1199-1205
                    ev["ParentTraceContext"] = {
                        "TraceParent": traceparent(trace_id, _new_span_id(), flags),
                        "TraceState": state,
                    }
            elif t == EventType.SUB_ORCHESTRATION_CREATED:
                if not ev.get("ClientSpanId"):  # TaskOrchestrationDispatcher.cs:1323-1329
                    ev["ClientSpanId"] = f"{_new_span_id():016x}"
                children[int(ev.get("EventId", -1))] = traceparent(trace_id, int(ev["ClientSpanId"], 16), flags)
            elif t in _COMPLETIONS or t == EventType.TIMER_FIRED:
                if scheduled is None:
                    scheduled = {
                        int(e.get("EventId", -1)): e
                        for e in history
                        if e.get("EventType")
                        in (EventType.TASK_SCHEDULED, EventType.TIMER_CREATED, EventType.SUB_ORCHESTRATION_CREATED)
                    }
                self._completion(ev, scheduled, inst, me, state, now)
        for m in result.outbound:
            ev = m.event
            t = ev.get("EventType")
            if t == EventType.EXECUTION_STARTED and not ev.get("ParentTraceContext"):
                task_id = (ev.get("ParentInstance") or {}).get("TaskScheduleId")
                if task_id in children:
                    ev["ParentTraceContext"] = {"TraceParent": children[task_id], "TraceState": state}
            elif t == EventType.EVENT_RAISED and m.instance_id.startswith("@") and not ev.get("ParentTraceContext"):
                # an entity request carries the orchestration's context (TaskEntityDispatcher.cs:1053-1056)
                ev["ParentTraceContext"] = {"TraceParent": traceparent(trace_id, span_id, flags), "TraceState": state}

    def _execution_span(self, start: Event, is_new: bool, now: int) -> tuple[int, int, int, str | None] | None:
        """The execution's own span (trace, span id, flags, state); fixed and stored in its first episode."""
        ptc = start.get("ParentTraceContext")
        if not isinstance(ptc, dict):
            return None
        parent = parse_traceparent(ptc.get("TraceParent"))
        if parent is None:
            return None
        trace_id, _, flags = parent
        own = parse_traceparent(ptc.get("Id"))
        if own is None or own[0] != trace_id:
            if not is_new:  # recorded before devhost traced this instance: no span of its own
                return None
            span_id = _new_span_id()
            ptc["Id"] = traceparent(trace_id, span_id, flags)
            ptc["SpanId"] = f"{span_id:016x}"
            ptc["ActivityStartTime"] = h.format_ts(datetime.fromtimestamp(now / 1e9, UTC))
            return trace_id, span_id, flags, _trace_state(ptc)
        return trace_id, own[1], flags, _trace_state(ptc)

    def _orchestration_ended(self, start: Event, inst: Instance, status: RuntimeStatus, now: int) -> None:
        """The execution's SERVER span, recorded once when it ends (TaskOrchestrationDispatcher.cs:1126-1176)."""
        ptc = start.get("ParentTraceContext")
        if not isinstance(ptc, dict):
            return
        parent = parse_traceparent(ptc.get("TraceParent"))
        own = parse_traceparent(ptc.get("Id"))
        if parent is None or own is None:
            return
        name = start.get("Name") or inst.name
        error = None
        if status == RuntimeStatus.FAILED:
            error = _failure_text(inst.output) or status.value
        elif status == RuntimeStatus.TERMINATED:
            error = status.value
        self._record(
            f"orchestration:{name}",
            SpanKind.SERVER,
            parent,
            _ns(ptc.get("ActivityStartTime"), now),
            now,
            {TYPE: "orchestration", NAME: name, INSTANCE_ID: inst.instance_id, STATUS: status.value},
            span_id=own[1],
            error=error,
            ok=None if error else status.value,
            trace_state=_trace_state(ptc),
        )

    def _completion(
        self,
        ev: Event,
        scheduled: dict[int, Event],
        inst: Instance,
        me: tuple[int, int, int],
        state: str | None,
        now: int,
    ) -> None:
        t = ev.get("EventType")
        if t == EventType.TIMER_FIRED:  # TraceHelper.cs:485-507
            created = scheduled.get(int(ev.get("TimerId", -1)))
            self._record(
                f"orchestration:{inst.name}:timer",
                SpanKind.INTERNAL,
                me,
                _ns(created.get("Timestamp") if created else None, now),
                now,
                {
                    TYPE: "timer",
                    NAME: inst.name,
                    INSTANCE_ID: inst.instance_id,
                    FIRE_AT: ev.get("FireAt"),
                    TASK_ID: ev.get("TimerId"),
                },
                trace_state=state,
            )
            return
        cause = scheduled.get(int(ev.get("TaskScheduledId", -1)))
        if cause is None:
            return
        # The client span of the activity or sub-orchestration call, under the span id it was scheduled with.
        extra: dict[str, Any] = {}
        if cause.get("EventType") == EventType.TASK_SCHEDULED:  # TraceHelper.cs:233-316
            client = parse_traceparent((cause.get("ParentTraceContext") or {}).get("TraceParent"))
            if client is None:
                return
            kind, span_id, extra = "activity", client[1], {TASK_ID: cause.get("EventId")}
        elif cause.get("ClientSpanId"):  # TraceHelper.cs:327-407
            kind, span_id = "orchestration", int(cause["ClientSpanId"], 16)
        else:
            return
        failed = _COMPLETIONS.get(int(t or 0), False)
        name = cause.get("Name") or ""
        self._record(
            f"{kind}:{name}",
            SpanKind.CLIENT,
            me,
            _ns(cause.get("Timestamp"), now),
            now,
            {TYPE: kind, NAME: name, INSTANCE_ID: inst.instance_id, **extra},
            span_id=span_id,
            error=(ev.get("Reason") or "failed") if failed else None,
            trace_state=state,
        )

    # --------------------------------------------------------------- activities
    def activity_starts(self, msg: Message) -> int | None:
        """Make the activity's span current in this task (the function runs in a copy of its context,
        so spans the function makes itself nest under it); its span id, recorded by `after_activity`."""
        parent = parse_traceparent((msg.event.get("ParentTraceContext") or {}).get("TraceParent"))
        if parent is None:
            return None
        span_id = _new_span_id()
        own = SpanContext(parent[0], span_id, is_remote=False, trace_flags=TraceFlags(parent[2]))
        otel_context.attach(trace.set_span_in_context(NonRecordingSpan(own)))
        return span_id

    def after_activity(self, msg: Message, completion: Event, elapsed_s: float, span_id: int | None) -> None:
        """The activity function's SERVER span, under the client span id its TaskScheduled carries
        (TraceHelper.cs:192-222)."""
        ev = msg.event
        ptc = ev.get("ParentTraceContext") or {}
        parent = parse_traceparent(ptc.get("TraceParent"))
        if parent is None or span_id is None:
            return
        now = time.time_ns()
        name = ev.get("Name") or ""
        failed = completion.get("EventType") == EventType.TASK_FAILED
        self._record(
            f"activity:{name}",
            SpanKind.SERVER,
            parent,
            now - int(elapsed_s * 1e9),
            now,
            {TYPE: "activity", NAME: name, INSTANCE_ID: msg.instance_id, TASK_ID: ev.get("EventId")},
            span_id=span_id,
            error=(completion.get("Reason") or "failed") if failed else None,
            trace_state=_trace_state(ptc),
        )

    # ----------------------------------------------------------------- entities
    def after_entity(self, messages: list[Message], result: Any, elapsed_s: float) -> None:
        """Per operation: the caller's CLIENT (call) or PRODUCER (signal) span and the entity's SERVER
        or CONSUMER span under it (TraceHelper.cs:523-551, 601-676; TaskEntityDispatcher.cs:700-777)."""
        now = time.time_ns()
        started = now - int(elapsed_s * 1e9)
        dropped = {id(m) for m, _ in result.dropped}
        replies = {m.event.get("Name"): m.event for m in result.outbound}
        for msg in messages:
            ev = msg.event
            if id(msg) in dropped or ev.get("EventType") != EventType.EVENT_RAISED:
                continue
            ptc = ev.get("ParentTraceContext") or {}
            caller = parse_traceparent(ptc.get("TraceParent"))
            if caller is None:
                continue
            request = parse_request(ev.get("Input"))
            if request is None:
                continue
            op = str(request.get("op") or "")
            signal = bool(request.get("signal"))
            entity = msg.instance_id
            span_name = f"entity:{_entity_name(entity)}:{op}"
            operation = "signal_entity" if signal else "call_entity"
            error = None
            reply = replies.get(request.get("id"))
            if reply is not None:
                try:
                    response = json.loads(reply.get("Input") or "{}")
                except ValueError:
                    response = {}
                if isinstance(response, dict) and response.get("exceptionType"):
                    error = _failure_text(response.get("result")) or "operation failed"
            state = _trace_state(ptc)
            requested = _ns(request.get("Timestamp"), started)
            client_id = _new_span_id()
            self._record(
                span_name,
                SpanKind.PRODUCER if signal else SpanKind.CLIENT,
                caller,
                requested,
                started if signal else now,
                {TYPE: "entity", OPERATION: operation, TARGET_INSTANCE_ID: entity},
                span_id=client_id,
                trace_state=state,
            )
            self._record(
                span_name,
                SpanKind.CONSUMER if signal else SpanKind.SERVER,
                (caller[0], client_id, caller[2]),
                started,
                now,
                {TYPE: "entity", OPERATION: operation, INSTANCE_ID: entity, ENTITY_ERROR: error},
                error=error,
                ok=None if error else "Completed",
                trace_state=state,
            )

    # --------------------------------------------------------------------- HTTP
    async def http_request(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        parent = TraceContextTextMapPropagator().extract(dict(request.headers))
        resource = request.match_info.route.resource if request.match_info.route else None
        route = resource.canonical if resource is not None else request.path
        attributes = {
            "http.request.method": request.method,
            "url.path": request.path,
            "http.route": route,
            "url.scheme": request.scheme,
            "server.address": request.host,
        }
        span = self.http_tracer.start_span(
            f"{request.method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            span.set_attribute("http.response.status_code", exc.status)
            if exc.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            raise
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        else:
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response
        finally:
            function_route = request.get(HTTP_ROUTE)  # an HTTP function's own template (catch-all route)
            if function_route:
                span.update_name(f"{request.method} {function_route}")
                span.set_attribute("http.route", function_route)
            otel_context.detach(token)
            span.end()


@web.middleware
async def http_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    from . import tracing

    spans = tracing.active
    if spans is None or request.path.startswith(("/dashboard", "/devhost/")):
        return await handler(request)
    return await spans.http_request(request, handler)


def _failure_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value[:500]
    if isinstance(value, dict):
        return str(value.get("message") or value.get("Message") or value)[:500]
    return str(value)[:500]


def with_exporter(exporter: SpanExporter) -> Spans:
    ids = ChosenIds()
    provider = TracerProvider(id_generator=ids, resource=Resource.create({"service.name": "devhost"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Spans(provider, ids)


def from_environment() -> Spans:
    """OTLP export configured by the standard OTEL_* variables (endpoint, headers, protocol, service name)."""
    protocol = (
        (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter()
    ids = ChosenIds()
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "devhost"}
    provider = TracerProvider(id_generator=ids, resource=Resource.create(defaults))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the app's own spans join devhost's traces
    atexit.register(provider.shutdown)
    return Spans(provider, ids)
