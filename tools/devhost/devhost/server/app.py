"""DevHost: one aiohttp server + the durable dispatcher + timers for one function app.

Wiring lives here (not in main.py) so tests can run a whole host in-process on a free
loopback port with a memory store: `await DevHost(index, store, ...).start(0)`.

Routes, in match order:
  /runtime/webhooks/durabletask/...   Durable HTTP API (also the SDK's rpcBaseUrl)
  /admin/functions/{name}             invoke a non-HTTP function (202)
  /admin/host/status                  liveness, as the Functions host has it
  /dashboard, /devhost/api/...        the dashboard and its devhost-only routes (devhost/server/dashboard)
  /{routePrefix}/...                  HTTP-trigger functions
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from .. import tracing
from ..client import NotFound, TaskHubClient
from ..dispatcher import Dispatcher, DispatcherOptions
from ..index import AppIndex, FunctionInfo
from ..orchestration import EngineOptions
from ..store.base import Store
from ..versioning import Versioning
from .binding import WEBHOOK_PATH, client_binding_json
from .dashboard.routes import add_dashboard_routes
from .durable_api import DurableHttpApi
from .http import BadRequest, Query, json_errors, read_json_object, route
from .http_functions import HttpFunctions
from .invoke import FunctionInvoker
from .origin_guard import OriginGuard, allowed_hosts_from
from .queues import QueueJob, QueueOptions, QueuePoller, connection_string
from .settings import SettingsError, resolve_setting_refs
from .triggers import Schedule, ScheduleError, TimerJob, TimerScheduler, trigger_value

log = logging.getLogger("devhost")

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
# Azure Functions' documented maximum HTTP request size.
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
# Request line and header sizes: aiohttp's 8 KiB default turns a long query (a status filter repeated
# for each status, a long prefix) into a bare parser error; the routes answer such queries themselves.
MAX_LINE_BYTES = 64 * 1024


class HostStartupError(Exception):
    """The app cannot be hosted as configured (bad route, bad schedule, port in use...)."""


class DevHost:
    """Hosts one indexed app on a store. `start(port)` serves; `stop()` drains and returns."""

    def __init__(
        self,
        index: AppIndex,
        store: Store,
        *,
        hub: str = "TestHubName",
        route_prefix: str = "api",
        dispatcher_options: DispatcherOptions | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        bind_host: str = "127.0.0.1",
        script_root: str = "",
        enable_timers: bool = True,
        settings: Mapping[str, str] | None = None,
        queue_triggers: bool = False,
        queue_options: QueueOptions | None = None,
        allowed_hosts: Iterable[str] = (),
        versioning: Versioning | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.hub = hub
        self.route_prefix = route_prefix.strip("/")
        self.bind_host = bind_host
        self.max_request_bytes = max_request_bytes
        self.settings = settings if settings is not None else os.environ
        # Loopback names always; DEVHOST_ALLOWED_HOSTS, --allow-host and a specific bind address on request.
        bound = [bind_host] if bind_host not in ("", "0.0.0.0", "::") else []
        self.origin_guard = OriginGuard(allowed_hosts_from(self.settings, [*allowed_hosts, *bound]))
        self.client = TaskHubClient(index, store, versioning or Versioning())
        self.dispatcher = Dispatcher(
            index,
            store,
            options=dispatcher_options,
            engine=EngineOptions(versioning=versioning) if versioning else None,
        )
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="devhost-function")
        self.invoker = FunctionInvoker(self.executor, self._client_binding, script_root)
        others = list(index.others.values())
        try:
            self.http = HttpFunctions([f for f in others if f.kind == HTTP_TRIGGER], self.route_prefix, self.invoker)
        except ValueError as exc:
            raise HostStartupError(f"invalid HTTP route: {exc}") from None
        self.timer_jobs = self._timer_jobs([f for f in others if f.kind == TIMER_TRIGGER]) if enable_timers else []
        self.queue_jobs = self._queue_jobs([f for f in others if f.kind == QUEUE_TRIGGER]) if queue_triggers else []
        self.queue_options = queue_options or QueueOptions()
        self.durable_api = DurableHttpApi(self.client, hub=hub)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self._dispatcher_task: asyncio.Task[None] | None = None
        self._timers: TimerScheduler | None = None
        self._queues: QueuePoller | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ set-up
    def _timer_jobs(self, functions: list[FunctionInfo]) -> list[TimerJob]:
        jobs = []
        for info in functions:
            trigger = next(b for b in info.bindings if b.get("name") == info.trigger_param)
            try:
                text = resolve_setting_refs(str(trigger.get("schedule") or ""), self.settings)
                schedule = Schedule.parse(text)
            except (ScheduleError, SettingsError) as exc:
                raise HostStartupError(f"timer function '{info.function_name}': {exc}") from None
            jobs.append(TimerJob(info.name, schedule, bool(trigger.get("runOnStartup"))))
        return jobs

    def _queue_jobs(self, functions: list[FunctionInfo]) -> list[QueueJob]:
        jobs = []
        for info in functions:
            trigger = next(b for b in info.bindings if b.get("name") == info.trigger_param)
            connection = str(trigger.get("connection") or "AzureWebJobsStorage")
            try:
                queue = resolve_setting_refs(str(trigger.get("queueName") or ""), self.settings).lower()
            except SettingsError as exc:
                raise HostStartupError(f"queue function '{info.function_name}': {exc}") from None
            if connection_string(self.settings, connection) is None:
                log.warning(
                    "devhost: queue function '%s': setting '%s' is not set, so queue '%s' is not polled; "
                    "invoke it with POST /admin/functions/%s",
                    info.function_name,
                    connection,
                    queue,
                    info.function_name,
                )
                continue
            jobs.append(QueueJob(info.name, queue, connection))
        return jobs

    @property
    def rpc_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}/"

    @property
    def local_origin(self) -> str:
        return f"http://localhost:{self.port}"

    def _client_binding(self, origin: str, hub: str | None, connection: str | None) -> str:
        if hub:
            try:
                hub = resolve_setting_refs(hub, self.settings)
            except SettingsError:
                pass
        return client_binding_json(
            origin=origin, rpc_base_url=self.rpc_base_url, hub=hub or self.hub, connection=connection
        )

    def build_web_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.max_request_bytes,
            middlewares=[*tracing.middlewares(), json_errors, self.origin_guard.middleware],
        )
        self.durable_api.add_routes(app)
        app.router.add_post("/admin/functions/{name}", route(self._admin_invoke))
        app.router.add_get("/admin/host/status", route(self._host_status))
        add_dashboard_routes(app, self.client)
        if self.route_prefix:
            app.router.add_get("/", self._home)
        # Everything else: HTTP functions (the prefix is matched case-insensitively, as ASP.NET does).
        app.router.add_route("*", "/{tail:.*}", self.http.handle)
        app.on_cleanup.append(self._close_sdk_session)
        return app

    # ---------------------------------------------------------------- lifecycle
    async def start(self, port: int = 7071) -> int:
        """Serve on `bind_host:port` (0 = any free port); start the dispatcher and timers."""
        self._runner = web.AppRunner(
            self.build_web_app(),
            shutdown_timeout=5.0,
            access_log=None,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind_host, port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise HostStartupError(f"cannot listen on {self.bind_host}:{port}: {exc.strerror or exc}") from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        self._stop.clear()
        self._dispatcher_task = asyncio.ensure_future(self.dispatcher.run(self._stop))
        if self.timer_jobs:
            self._timers = TimerScheduler(self.timer_jobs, self._invoke_timer)
            self._timers.start()
        if self.queue_jobs:
            self._queues = QueuePoller(self.queue_jobs, self._invoke_queue, self.settings, self.queue_options)
            self._queues.start()
        return self.port

    async def stop(self) -> None:
        """Stop timers, stop serving (in-flight requests get a few seconds), drain the dispatcher."""
        if self._timers is not None:
            await self._timers.stop()
            self._timers = None
        if self._queues is not None:
            await self._queues.stop()
            self._queues = None
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._stop.set()
        if self._dispatcher_task is not None:
            await self._dispatcher_task
            self._dispatcher_task = None
        self.dispatcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    async def _close_sdk_session(app: web.Application) -> None:
        """The SDK keeps one module-global aiohttp session; it belongs to this loop, so close it with us."""
        try:
            from azure.durable_functions.models.utils import http_utils
        except ImportError:
            return
        session = getattr(http_utils, "_client_session", None)
        if session is not None and not session.closed:
            await session.close()
        http_utils._client_session = None

    # --------------------------------------------------------------- functions
    async def _invoke_timer(self, name: str, value: Any) -> Any:
        info = self.index.others[name.lower()]
        return await self.invoker.call(info, value, origin=self.local_origin, reason="Timer fired")

    async def _invoke_queue(self, name: str, value: Any) -> Any:
        info = self.index.others[name.lower()]
        return await self.invoker.call(info, value, origin=self.local_origin, reason="New queue message detected")

    async def _admin_invoke(self, request: web.Request, q: Query) -> web.StreamResponse:
        name = request.match_info["name"]
        info = self.index.others.get(name.lower())
        if info is None:
            for table, what in (
                (self.index.orchestrators, "an orchestrator"),
                (self.index.activities, "an activity"),
                (self.index.entities, "an entity"),
            ):
                if name.lower() in table:
                    raise BadRequest(f"'{name}' is {what} function; use the Durable HTTP API instead.")
            raise NotFound(f"No function named '{name}' was found.")
        if info.kind == HTTP_TRIGGER:
            raise BadRequest(f"'{name}' is an HTTP function; call it at {self.http_url(info)}.")
        body = await read_json_object(request, '{"input": "..."}')
        raw_input = body.get("input", "")
        input_text = raw_input if isinstance(raw_input, str) else json.dumps(raw_input)
        message_id = body.get("messageId")  # devhost extra: replay a redelivery of one message
        if message_id is not None and not isinstance(message_id, str):
            raise BadRequest("'messageId' must be a string.")
        try:
            value = trigger_value(info.kind, input_text, info.handler, info.trigger_param, message_id)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"Cannot build a {info.kind} input from the given input: {exc}") from None
        origin = f"{request.scheme}://{request.host}"
        task = asyncio.ensure_future(self._run_admin(info, value, origin))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.Response(status=202)

    async def _run_admin(self, info: FunctionInfo, value: Any, origin: str) -> None:
        try:
            await self.invoker.call(
                info, value, origin=origin, reason="This function was programmatically called via the host APIs."
            )
        except Exception:  # logged by the invoker with its traceback
            pass

    async def _host_status(self, request: web.Request, q: Query) -> web.StreamResponse:
        return web.json_response(
            {
                "state": "Running",
                "taskHub": self.hub,
                "functions": len(self.index.others)
                + len(self.index.orchestrators)
                + len(self.index.activities)
                + len(self.index.entities),
            }
        )

    async def _home(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="devhost: your function app is up and running.\n", content_type="text/plain")

    # ------------------------------------------------------------------ banner
    def http_url(self, info: FunctionInfo) -> str:
        for http_route in self.http.routes:
            if http_route.info is info:
                return f"http://localhost:{self.port}{self.http.url_path(http_route)}"
        return ""

    def banner(self) -> str:
        """The Core Tools-like function list printed at startup."""
        lines = ["", "Functions:", ""]
        for http_route in sorted(self.http.routes, key=lambda r: r.info.function_name.lower()):
            lines.append(
                f"        {http_route.info.function_name}: [{http_route.display_methods}] "
                f"http://localhost:{self.port}{self.http.url_path(http_route)}"
            )
        lines.append("")
        groups: list[tuple[str, dict[str, FunctionInfo]]] = [
            ("orchestrationTrigger", self.index.orchestrators),
            ("activityTrigger", self.index.activities),
            ("entityTrigger", self.index.entities),
            ("", {k: v for k, v in self.index.others.items() if v.kind != HTTP_TRIGGER}),
        ]
        for _, table in groups:
            for info in sorted(table.values(), key=lambda i: i.function_name.lower()):
                detail = info.kind
                queue_job = next((j for j in self.queue_jobs if j.function == info.name), None)
                if queue_job is not None:
                    detail += f" (polling queue '{queue_job.queue}')"
                if info.kind == TIMER_TRIGGER:
                    job = next((j for j in self.timer_jobs if j.name == info.name), None)
                    if job is not None:
                        detail += f" ({job.schedule.text}{', runs on startup' if job.run_on_startup else ''})"
                lines.append(f"        {info.function_name}: {detail}")
        lines += [
            "",
            f"Durable HTTP API: http://localhost:{self.port}{WEBHOOK_PATH}/  (task hub {self.hub})",
            f'Invoke non-HTTP functions: POST http://localhost:{self.port}/admin/functions/<name> {{"input": "..."}}',
            "",
        ]
        return "\n".join(lines)
