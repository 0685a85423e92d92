"""devhost's one HTTP layer: errors, query parsing, body reading, paging and the route wrapper.

Every devhost route (the Durable HTTP API, /admin, the dashboard's API, the app's HTTP functions)
reads requests and answers errors through this module, so a rule about bad input is written once:
a `ClientError` raised anywhere becomes its JSON 4xx (`{"Message", "ExceptionMessage"}`, the
extension's error shape) in the `json_errors` middleware, and anything unexpected becomes a logged
JSON 500 without a traceback in the body.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..client import ClientError, TaskHubClient
from ..history import RuntimeStatus
from ..store.base import InstanceQuery, QueryPage

log = logging.getLogger("devhost")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QueryHandler = Callable[[web.Request, "Query"], Awaitable[web.StreamResponse]]

# Enum.TryParse<OrchestrationRuntimeStatus>: exact names and the enum's numbers (OrchestrationRuntimeStatus.cs).
_STATUS_NUMBERS = {
    "Running": 0,
    "Completed": 1,
    "ContinuedAsNew": 2,
    "Failed": 3,
    "Canceled": 4,
    "Terminated": 5,
    "Pending": 6,
    "Suspended": 7,
}
_STATUS_BY_NAME = {
    **{s.value: s for s in RuntimeStatus},
    **{str(_STATUS_NUMBERS[s.value]): s for s in RuntimeStatus if s.value in _STATUS_NUMBERS},
}
MAX_PAGE = 1000
CONTINUATION = "x-ms-continuation-token"


class BadRequest(ClientError):
    status = 400


class PayloadTooLarge(ClientError):
    status = 413


# --------------------------------------------------------------------- errors
def error_response(status: int, message: str, exc: BaseException | None = None, **extra: Any) -> web.Response:
    """The error shape of every devhost route: `{"Message", "ExceptionMessage"}` (plus details)."""
    body: dict[str, Any] = {"Message": message, "ExceptionMessage": message, **extra}
    if exc is not None:
        body["ExceptionType"] = type(exc).__name__
    return web.json_response(body, status=status)


def _storage_unreachable(exc: BaseException) -> bool:
    """The Azure SDK gave up reaching storage (connection refused or reset), as opposed to a devhost bug."""
    try:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    except ImportError:  # the memory store needs no Azure SDK
        return False
    return isinstance(exc, ServiceRequestError | ServiceResponseError)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ClientErrors as their JSON 4xx, router-level 404/405/413 as JSON, storage outages as 503, and any
    other exception as a logged JSON 500, so no caller gets an HTML page, a traceback or a hang."""
    try:
        return await handler(request)
    except ClientError as exc:
        return error_response(exc.status, str(exc), exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception as exc:
        if _storage_unreachable(exc):  # not a bug: storage (Azurite) is down or restarting
            reason = (str(exc).splitlines() or [""])[0]
            log.warning("devhost: %s %s: storage is unreachable: %s", request.method, request.rel_url.path, reason)
            response = error_response(503, f"The task hub's storage is unreachable ({reason}); try again shortly.", exc)
            response.headers["Retry-After"] = "5"
            return response
        log.exception("devhost: %s %s failed", request.method, request.rel_url.path)
        return error_response(500, "Something went wrong while processing your request", exc)


# ---------------------------------------------------------------------- query
class Query:
    """Query parameters parsed as leniently as the extension parses them (HttpApiHandler.cs 719-783):
    names case-insensitive, the first of repeated values (but every value of a status list), and a value
    that does not parse is ignored (the default applies) rather than refused.

    Booleans are `true`/`false` in any case (bool.TryParse); numbers are integers (int.TryParse); times
    anything ISO 8601 (DateTime.TryParse, more lenient still); statuses the exact names or their numbers
    (Enum.TryParse is case-sensitive: `running` is no status, so no filter)."""

    def __init__(self, request: web.Request) -> None:
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        for key, value in request.query.items():
            self.values.setdefault(key.lower(), value)
            self.lists.setdefault(key.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        return self.values.get(name.lower())

    def boolean(self, name: str, default: bool) -> bool:
        raw = (self.get(name) or "").strip().lower()
        return True if raw == "true" else False if raw == "false" else default

    def integer(self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
        """An integer; one that does not parse or is below `minimum` is the default, one above `maximum` is
        `maximum` (devhost's bounds: a page of 0 or a million rows is no page the store can serve)."""
        raw = (self.get(name) or "").strip()
        try:
            value = int(raw)
        except ValueError:
            return default
        if value < minimum:
            return default
        return min(value, maximum) if maximum is not None else value

    def seconds(self, name: str) -> float | None:
        """A number of seconds (double.TryParse), clamped to 0-3600; None when absent or unparsable."""
        try:
            value = float((self.get(name) or "").strip())
        except ValueError:
            return None
        if value != value:  # NaN
            return None
        return max(0.0, min(value, 3600.0))

    def time(self, name: str) -> datetime | None:
        raw = (self.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw.replace(" ", "+"))
        except ValueError:
            return None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def statuses(self, name: str) -> list[RuntimeStatus] | None:
        """Every value of a repeated parameter, each split at commas; names or numbers that are not a status
        are skipped (TryGetIEnumerableQueryParameterValue, HttpApiHandler.cs 719)."""
        found: list[RuntimeStatus] = []
        for raw in self.lists.get(name.lower(), []):
            for part in raw.split(","):
                status = _STATUS_BY_NAME.get(part.strip())
                if status is not None and status not in found:
                    found.append(status)
        return found or None


def route(handler: QueryHandler, *, hub: str | None = None) -> Handler:
    """An aiohttp handler from one taking the parsed query; with `hub`, a `taskHub=` naming another hub is a 400."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        q = Query(request)
        if hub is not None:
            asked = q.get("taskHub")
            if asked and asked.lower() != hub.lower():
                raise BadRequest(f"Task hub '{asked}' is not served here; this host serves task hub '{hub}'.")
        return await handler(request, q)

    return wrapper


# ----------------------------------------------------------------------- body
def body_limit(request: web.Request) -> int | None:
    """The server's request size limit (aiohttp keeps it on the application)."""
    return getattr(request.app, "_client_max_size", None)


async def read_body(request: web.Request) -> bytes:
    """The request body; a 413 ClientError if it exceeds the server's client_max_size."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"The request body is larger than the limit of {body_limit(request)} bytes.") from None


def parse_json(raw: bytes, invalid: str = "Invalid JSON content") -> Any:
    """JSON from request bytes (UTF-8, a BOM allowed); anything else is a 400 with `invalid` as its message.

    RecursionError: JSON nested deeper than Python's recursion limit is refused like malformed JSON."""
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest(invalid) from None


async def read_json_body(request: web.Request, invalid: str = "Invalid JSON content") -> tuple[bool, Any]:
    """(present, value): an empty body is "no input", anything else must be JSON."""
    raw = await read_body(request)
    if not raw.strip():
        return False, None
    return True, parse_json(raw, invalid)


async def read_json_object(request: web.Request, example: str) -> dict[str, Any]:
    """A JSON object body (empty = `{}`); `example` shows the expected shape in the 400 message."""
    present, value = await read_json_body(request, f"The request body must be JSON like {example}.")
    if not present:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"The request body must be a JSON object like {example}.")
    return value


# --------------------------------------------------------------------- paging
def instance_query(q: Query, request: web.Request, **extra: Any) -> InstanceQuery:
    """The list parameters the Durable API takes (plus `extra` fields) and the continuation header."""
    return InstanceQuery(
        runtime_status=q.statuses("runtimeStatus"),
        created_from=q.time("createdTimeFrom"),
        created_to=q.time("createdTimeTo"),
        instance_id_prefix=q.get("instanceIdPrefix") or None,
        page_size=q.integer("top", 100, maximum=MAX_PAGE),
        continuation=request.headers.get(CONTINUATION) or None,
        **extra,
    )


async def query_page(client: TaskHubClient, query: InstanceQuery) -> QueryPage:
    """One store page; a continuation token the store cannot read is the caller's 400."""
    try:
        return await client.query(query)
    except (ValueError, TypeError):
        raise BadRequest(f"The {CONTINUATION} header is not a valid continuation token.") from None


def page_response(items: list[Any], page: QueryPage, *, always_header: bool = False) -> web.Response:
    """One page as a JSON array, its continuation (if any) in the header the Durable API uses; with
    `always_header` the header is there even when empty, as the extension adds it (HttpApiHandler.cs 508, 548)."""
    headers = {CONTINUATION: page.continuation or ""} if page.continuation or always_header else {}
    return web.json_response(items, status=200, headers=headers)
