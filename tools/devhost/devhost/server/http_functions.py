"""HTTP-trigger functions: route matching, `func.HttpRequest` in, `func.HttpResponse` out.

Requests under `/{routePrefix}/` are matched against the functions' route templates
(most literal text first, as ASP.NET prefers literal segments) and methods. The worker
contract for the `$return` http output binding is followed: a `func.HttpResponse` or a
`str` (200 text/plain); anything else fails the invocation like it does in Azure, so a
bug is found locally rather than after deployment.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

from ..index import FunctionInfo
from .http import read_body
from .invoke import FunctionInvoker
from .routing import RouteTemplate, compile_route

log = logging.getLogger("devhost")
_INSTANCE_IN_LOCATION = re.compile(r"/instances/([^/?]+)")


# The matched function's route template (`/api/orders/{id}`), for the request's span (devhost/otel_spans.py).
HTTP_ROUTE = web.RequestKey("devhost.http_route", str)


@dataclass
class HttpRoute:
    info: FunctionInfo
    template: RouteTemplate
    methods: frozenset[str] | None  # None: any method

    @property
    def display_methods(self) -> str:
        return ",".join(sorted(self.methods)) if self.methods else "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"


def _http_routes(functions: list[FunctionInfo]) -> list[HttpRoute]:
    routes: list[HttpRoute] = []
    for info in functions:
        trigger = next(b for b in info.bindings if b.get("name") == info.trigger_param)
        template = compile_route(str(trigger.get("route") or info.function_name))
        raw_methods = trigger.get("methods") or []
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in raw_methods) or None
        routes.append(HttpRoute(info, template, methods))
    routes.sort(key=lambda r: r.template.specificity)
    return routes


def _instance_from_response(result: Any) -> str | None:
    """The orchestration instance an HTTP starter answered about (from its check-status Location)."""
    if isinstance(result, func.HttpResponse):
        location = result.headers.get("Location") or ""
        m = _INSTANCE_IN_LOCATION.search(location)
        if m:
            return m.group(1)
    return None


def to_web_response(result: Any, function_name: str) -> web.Response:
    """Convert a function's return value per the `$return` http output binding."""
    if isinstance(result, func.HttpResponse):
        headers = list(result.headers.items())
        if not any(k.lower() == "content-type" for k, _ in headers):
            mimetype = result.mimetype or "text/plain"
            ct = f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
            headers.append(("Content-Type", ct))
        body = result.get_body() or b""
        response = web.Response(status=result.status_code, body=body)
        for key, value in headers:
            response.headers.add(key, value)
        return response
    if isinstance(result, str):
        return web.Response(status=200, text=result, content_type="text/plain", charset="utf-8")
    if result is None:
        return web.Response(status=204)
    raise TypeError(
        f"HTTP function '{function_name}' returned {type(result).__name__}; "
        "return a func.HttpResponse or a str (the $return http output binding accepts nothing else)"
    )


class HttpFunctions:
    """Serves the app's HTTP-trigger functions under the route prefix."""

    def __init__(self, functions: list[FunctionInfo], route_prefix: str, invoker: FunctionInvoker) -> None:
        self.route_prefix = route_prefix.strip("/")
        self.routes = _http_routes(functions)
        self.invoker = invoker

    def url_path(self, route: HttpRoute) -> str:
        """The URL path shown in the banner (template as written, under the prefix)."""
        tail = route.template.template.strip("/")
        return "/" + "/".join(p for p in (self.route_prefix, tail) if p)

    def _relative_path(self, request: web.Request) -> str | None:
        path = request.rel_url.raw_path
        if self.route_prefix:
            prefix = "/" + self.route_prefix
            if path.lower() != prefix.lower() and not path.lower().startswith(prefix.lower() + "/"):
                return None
            path = path[len(prefix) :]
        return path.strip("/")

    def find(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self.routes:
            params = route.template.match(path)
            if params is None:
                continue
            if route.methods is None or method.upper() in route.methods:
                return route, params
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for everything under the prefix."""
        path = self._relative_path(request)
        found = self.find(request.method, path) if path is not None else None
        if found is None:
            return web.Response(status=404)
        route, params = found
        request[HTTP_ROUTE] = self.url_path(route)  # the function's route template, for its span
        body = await read_body(request)
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        query: dict[str, str] = {}
        for key, value in request.query.items():
            query[key] = f"{query[key]},{value}" if key in query else value
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            params=query,
            route_params=params,
            body=body,
        )
        origin = f"{request.scheme}://{request.host}"
        try:
            result = await self.invoker.call(
                route.info,
                http_request,
                origin=origin,
                reason=f"HTTP {request.method} {request.rel_url.path}",
                instance_of=_instance_from_response,
                convert=lambda r: to_web_response(r, route.info.function_name),
            )
            assert isinstance(result, web.Response)
            return result
        except Exception as exc:
            return web.Response(
                status=500,
                content_type="application/json",
                text=json.dumps(
                    {
                        "Message": f"Exception while executing function: Functions.{route.info.function_name}",
                        "ExceptionType": type(exc).__name__,
                        "ExceptionMessage": str(exc),
                    }
                ),
            )
