"""The Durable HTTP API (`/runtime/webhooks/durabletask/...`) over a TaskHubClient.

Routes, status codes and payloads follow the extension (docs/durable-protocol.md §6.2, §6.3), so
the unmodified SDK client, Core Tools-era scripts and the check-status URLs handed to
callers all work. The same routes are the SDK's RPC base (§5.2). Differences from the
extension, chosen so bad input is never a 5xx: every error is a JSON body
`{"Message": ..., "ExceptionMessage": ...}` with the ClientError's 4xx status (409 where
the extension answers 500 for "instance is active / not suspendable").
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..client import ClientError, NotFound, TaskHubClient, validate_instance_id
from ..entities import parse_entity_id
from ..harness import parse_json_text
from ..history import EVENT_NAMES, TERMINAL_STATUSES, Event, RuntimeStatus
from ..model import Instance, new_guid
from ..store.base import InstanceQuery
from .binding import WEBHOOK_PATH, check_status_payload
from .http_functions import body_limit

log = logging.getLogger("devhost")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_STATUS_BY_NAME = {s.value.lower(): s for s in RuntimeStatus}
MAX_PAGE = 1000


class BadRequest(ClientError):
    status = 400


class PayloadTooLarge(ClientError):
    status = 413


def format_time(value: datetime | None) -> str | None:
    """`yyyy-MM-ddTHH:mm:ssZ`, the extension's status-payload format."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def error_response(status: int, message: str, exc: BaseException | None = None) -> web.Response:
    body: dict[str, Any] = {"Message": message, "ExceptionMessage": message}
    if exc is not None:
        body["ExceptionType"] = type(exc).__name__
    return web.json_response(body, status=status)


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


def status_payload(inst: Instance, *, show_input: bool = True, show_history: bool = False,
                   show_history_output: bool = False) -> dict[str, Any]:
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


class Query:
    """Query parameters with case-insensitive names and strict, case-insensitive values."""

    def __init__(self, request: web.Request) -> None:
        self.values: dict[str, str] = {}
        for key, value in request.query.items():
            self.values.setdefault(key.lower(), value)

    def get(self, name: str) -> str | None:
        return self.values.get(name.lower())

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise BadRequest(f"Query parameter '{name}' must be true or false, not {raw!r}.")

    def integer(self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"Query parameter '{name}' must be an integer, not {raw!r}.") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f" and at most {maximum}" if maximum is not None else ""
            raise BadRequest(f"Query parameter '{name}' must be at least {minimum}{bound}.")
        return value

    def seconds(self, name: str) -> float | None:
        raw = self.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(f"Query parameter '{name}' must be a number of seconds, not {raw!r}.") from None
        if not 0 <= value <= 3600:
            raise BadRequest(f"Query parameter '{name}' must be between 0 and 3600 seconds.")
        return value

    def time(self, name: str) -> datetime | None:
        raw = self.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = datetime.fromisoformat(raw.strip().replace(" ", "+"))
        except ValueError:
            raise BadRequest(f"Query parameter '{name}' is not a valid date/time: {raw!r}.") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def statuses(self, name: str) -> list[RuntimeStatus] | None:
        raw = self.get(name)
        if not raw:
            return None
        # Unknown names are ignored, as in the extension.
        found = [_STATUS_BY_NAME[p.strip().lower()] for p in raw.split(",") if p.strip().lower() in _STATUS_BY_NAME]
        return found or None


def guarded(handler: Handler) -> Handler:
    """Turn ClientErrors into their JSON 4xx and anything unexpected into a logged JSON 500."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ClientError as exc:
            return error_response(exc.status, str(exc), exc)
        except web.HTTPException:
            raise
        except Exception as exc:
            if _storage_unreachable(exc):  # not a bug: storage (Azurite) is down or restarting
                reason = (str(exc).splitlines() or [""])[0]
                log.warning("devhost: %s %s: storage is unreachable: %s", request.method, request.rel_url, reason)
                response = error_response(503, f"The task hub's storage is unreachable ({reason}); try again shortly.",
                                          exc)
                response.headers["Retry-After"] = "5"
                return response
            log.exception("devhost: %s %s failed", request.method, request.rel_url)
            return error_response(500, "Something went wrong while processing your request", exc)

    return wrapper


def _storage_unreachable(exc: BaseException) -> bool:
    """The Azure SDK gave up reaching storage (connection refused or reset), as opposed to a devhost bug."""
    try:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    except ImportError:  # the memory store needs no Azure SDK
        return False
    return isinstance(exc, ServiceRequestError | ServiceResponseError)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"The request body is larger than the limit of {body_limit(request)} bytes.") from None


async def read_json_body(request: web.Request) -> tuple[bool, Any]:
    """(present, value): an empty body is "no input", anything else must be JSON."""
    raw = await _read(request)
    if not raw.strip():
        return False, None
    try:
        return True, json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Invalid JSON content") from None


class DurableHttpApi:
    """aiohttp handlers for one task hub; `add_routes` mounts them (testable without the CLI)."""

    def __init__(self, client: TaskHubClient, *, hub: str, connection: str | None = None,
                 poll_interval_cap: float = 1.0) -> None:
        self.client = client
        self.hub = hub
        self.connection = connection
        self.poll_interval_cap = poll_interval_cap

    # ---------------------------------------------------------------- mounting
    def add_routes(self, app: web.Application, base: str = WEBHOOK_PATH) -> None:
        base = base.rstrip("/")
        r = app.router
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/orchestrators/{functionName}", self.start),
            ("POST", "/orchestrators/{functionName}/{instanceId:.+}", self.start),
            ("GET", "/instances", self.list_instances),
            ("GET", "/instances/", self.list_instances),
            ("DELETE", "/instances", self.purge_by_filter),
            ("DELETE", "/instances/", self.purge_by_filter),
            ("POST", "/instances/{instanceId}/raiseEvent/{eventName}", self.raise_event),
            ("POST", "/instances/{instanceId}/terminate", self.terminate),
            ("POST", "/instances/{instanceId}/suspend", self.suspend),
            ("POST", "/instances/{instanceId}/resume", self.resume),
            ("POST", "/instances/{instanceId}/rewind", self.rewind),
            ("POST", "/instances/{instanceId}/restart", self.restart),
            ("GET", "/instances/{instanceId}", self.get_instance),
            ("DELETE", "/instances/{instanceId}", self.purge_instance),
            ("GET", "/entities", self.list_entities),
            ("GET", "/entities/", self.list_entities),
            ("GET", "/entities/{entityName}", self.list_entities),
            ("GET", "/entities/{entityName}/{entityKey}", self.read_entity),
            ("POST", "/entities/{entityName}/{entityKey}", self.signal_entity),
            ("DELETE", "/entities/{entityName}/{entityKey}", self.delete_entity),
        ]
        for method, path, handler in table:
            r.add_route(method, base + path, guarded(handler))
        r.add_route("*", base + "/{tail:.*}", guarded(self.not_found))

    # ----------------------------------------------------------------- helpers
    def _check_hub(self, q: Query) -> None:
        hub = q.get("taskHub")
        if hub and hub.lower() != self.hub.lower():
            raise BadRequest(f"Task hub '{hub}' is not served here; this host serves task hub '{self.hub}'.")

    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _check_status(self, request: web.Request, instance_id: str) -> web.Response:
        body = check_status_payload(self._origin(request), self.hub, self.connection, instance_id)
        return web.json_response(body, status=202,
                                 headers={"Location": body["statusQueryGetUri"], "Retry-After": "10"})

    async def _load(self, instance_id: str, *, history: bool = False) -> Instance:
        inst = await self.client.get(instance_id, history=history)
        if inst is None:
            raise _not_found(instance_id)
        return inst

    async def _wait_response(self, request: web.Request, instance_id: str, timeout: float,
                             interval: float) -> web.Response:
        """Start/restart with timeout+pollingInterval: wait for the result like the extension."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = max(0.01, min(interval, self.poll_interval_cap)) if interval else self.poll_interval_cap
        while True:
            inst = await self.client.get(instance_id)
            if inst is not None and inst.runtime_status.is_terminal:
                if inst.runtime_status == RuntimeStatus.COMPLETED:
                    return web.json_response(parse_json_text(inst.output), status=200)
                return web.json_response(status_payload(inst), status=200)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self._check_status(request, instance_id)
            await asyncio.sleep(min(interval, remaining))

    def _wait_params(self, q: Query) -> tuple[float, float] | None:
        timeout, interval = q.seconds("timeout"), q.seconds("pollingInterval")
        if timeout is None or interval is None:
            return None
        return timeout, interval

    # -------------------------------------------------------------- orchestrations
    async def start(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        name = request.match_info["functionName"]
        instance_id = request.match_info.get("instanceId")
        if instance_id is not None:
            validate_instance_id(instance_id)
        present, value = await read_json_body(request)
        input_text = json.dumps(value) if present else None
        iid = await self.client.start(name, input_text, instance_id)
        wait = self._wait_params(q)
        if wait is not None:
            return await self._wait_response(request, iid, *wait)
        return self._check_status(request, iid)

    async def get_instance(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        show_history = q.boolean("showHistory", False)
        show_history_output = q.boolean("showHistoryOutput", False)
        show_input = q.boolean("showInput", True)
        fail_500 = q.boolean("returnInternalServerErrorOnFailure", False)
        inst = await self._load(request.match_info["instanceId"], history=show_history)
        body = status_payload(inst, show_input=show_input, show_history=show_history,
                              show_history_output=show_history_output)
        if inst.runtime_status.is_terminal:
            status = 500 if fail_500 and inst.runtime_status == RuntimeStatus.FAILED else 200
            return web.json_response(body, status=status)
        return web.json_response(body, status=202, headers={"Location": str(request.url), "Retry-After": "5"})

    def _instance_query(self, q: Query, request: web.Request) -> InstanceQuery:
        return InstanceQuery(
            runtime_status=q.statuses("runtimeStatus"),
            created_from=q.time("createdTimeFrom"),
            created_to=q.time("createdTimeTo"),
            instance_id_prefix=q.get("instanceIdPrefix") or None,
            page_size=q.integer("top", 100, maximum=MAX_PAGE),
            continuation=request.headers.get("x-ms-continuation-token") or None,
        )

    async def _query(self, query: InstanceQuery) -> Any:
        try:
            return await self.client.query(query)
        except (ValueError, TypeError):
            raise BadRequest("The x-ms-continuation-token header is not a valid continuation token.") from None

    async def list_instances(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        show_input = q.boolean("showInput", False)
        page = await self._query(self._instance_query(q, request))
        body = [status_payload(i, show_input=show_input) for i in page.instances]
        headers = {"x-ms-continuation-token": page.continuation} if page.continuation else {}
        return web.json_response(body, status=200, headers=headers)

    async def purge_instance(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        iid = request.match_info["instanceId"]
        deleted = await self.client.purge(iid)
        if not deleted:
            raise _not_found(iid)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def purge_by_filter(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        created_from = q.time("createdTimeFrom")
        if created_from is None:
            raise BadRequest("Please provide value for 'createdTimeFrom' parameter.")
        requested = q.statuses("runtimeStatus")
        # Only finished instances are purged (Azure Storage backend), whatever was asked.
        statuses = [s for s in (requested or TERMINAL_STATUSES) if s in TERMINAL_STATUSES]
        query = InstanceQuery(runtime_status=statuses, created_from=created_from,
                              created_to=q.time("createdTimeTo") or datetime.now(UTC), page_size=MAX_PAGE)
        ids: list[str] = []
        if statuses:
            while True:
                page = await self._query(query)
                ids.extend(i.instance_id for i in page.instances)
                if not page.continuation:
                    break
                query.continuation = page.continuation
        deleted = 0
        for iid in ids:
            deleted += await self.client.store.purge(iid)
        if not deleted:
            return error_response(404, "No instances matched the purge filter.")
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def raise_event(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        raw = await _read(request)
        data_text: str | None = None
        if raw.strip():
            if request.content_type != "application/json":
                raise BadRequest("The request content type must be application/json.")
            try:
                data_text = json.dumps(json.loads(raw.decode("utf-8-sig")))
            except (UnicodeDecodeError, ValueError):
                raise BadRequest("Invalid JSON content") from None
        await self.client.raise_event(request.match_info["instanceId"], request.match_info["eventName"], data_text)
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        await self.client.terminate(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def suspend(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        await self.client.suspend(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def resume(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        await self.client.resume(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def rewind(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        await self.client.rewind(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def restart(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        iid = request.match_info["instanceId"]
        new_id = q.boolean("restartWithNewInstanceId", True)
        inst = await self.client.get(iid)
        if inst is None or inst.is_entity:
            # The extension answers 400 here (docs/durable-protocol.md §6.2), not 404.
            raise BadRequest(f"No instance with ID '{iid}' was found.")
        started = await self.client.start(inst.name, inst.input, new_guid() if new_id else iid)
        wait = self._wait_params(q)
        if wait is not None:
            return await self._wait_response(request, started, *wait)
        return self._check_status(request, started)

    # ----------------------------------------------------------------- entities
    @staticmethod
    def _entity_key(request: web.Request) -> str:
        key = request.match_info["entityKey"]
        return "" if key == "$" else key

    async def read_entity(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        name, key = request.match_info["entityName"], self._entity_key(request)
        exists, state = await self.client.read_entity(name, key)
        if not exists:
            return error_response(404, f"No entity '@{name.lower()}@{key}' with state was found.")
        return web.Response(status=200, text=state if state is not None else "null", content_type="application/json")

    async def signal_entity(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        name, key = request.match_info["entityName"], self._entity_key(request)
        raw = await _read(request)
        input_text: str | None = None
        if raw.strip():
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise BadRequest("The request body must be UTF-8 text.") from None
            if request.content_type == "application/json":
                try:
                    value = json.loads(text)
                except ValueError:
                    raise BadRequest("Invalid JSON content") from None
                input_text = value if isinstance(value, str) else json.dumps(value)
            else:
                input_text = text
        await self.client.signal_entity(name, key, q.get("op") or "", input_text)
        return web.Response(status=202)

    async def delete_entity(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        await self.client.signal_entity(request.match_info["entityName"], self._entity_key(request), "delete", None)
        return web.Response(status=202)

    async def list_entities(self, request: web.Request) -> web.StreamResponse:
        q = Query(request)
        self._check_hub(q)
        name = request.match_info.get("entityName")
        fetch_state = q.boolean("fetchState", False)
        time_from, time_to = q.time("lastOperationTimeFrom"), q.time("lastOperationTimeTo")
        query = InstanceQuery(
            entities=True, instance_id_prefix=f"@{name.lower()}@" if name else None,
            page_size=q.integer("top", 100, maximum=MAX_PAGE),
            continuation=request.headers.get("x-ms-continuation-token") or None,
        )
        page = await self._query(query)
        body = []
        for inst in page.instances:
            if not inst.entity_exists:
                continue
            if time_from and inst.last_updated_time < time_from or time_to and inst.last_updated_time > time_to:
                continue
            entity_name, key = parse_entity_id(inst.instance_id)
            item: dict[str, Any] = {"entityId": {"name": entity_name, "key": key},
                                    "lastOperationTime": format_time(inst.last_updated_time)}
            if fetch_state:
                item["state"] = parse_json_text(inst.entity_state)
            body.append(item)
        headers = {"x-ms-continuation-token": page.continuation} if page.continuation else {}
        return web.json_response(body, status=200, headers=headers)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return error_response(404, f"No Durable HTTP API route matches {request.method} {request.rel_url.path}.")


def _not_found(instance_id: str) -> ClientError:
    return NotFound(f"No instance with ID '{instance_id}' was found.")


def make_durable_api(client: TaskHubClient, hub: str, connection: str | None = None) -> Mapping[str, Handler]:
    """The handlers by name, for callers that mount them on their own routes."""
    api = DurableHttpApi(client, hub=hub, connection=connection)
    return {name: guarded(getattr(api, name)) for name in (
        "start", "get_instance", "list_instances", "purge_instance", "purge_by_filter", "raise_event", "terminate",
        "suspend", "resume", "rewind", "restart", "read_entity", "signal_entity", "delete_entity", "list_entities",
    )}
