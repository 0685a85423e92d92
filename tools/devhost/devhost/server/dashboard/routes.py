"""The dashboard's routes: its static files and the small devhost-only API it needs beside the Durable one.

Why separate routes: the Durable HTTP API (`/runtime/webhooks/durabletask/...`) follows the extension
exactly, so anything it cannot express lives under `/devhost/api/...`, a namespace Azure never serves:
listing by orchestrator name, the store's full-fidelity history (episode boundaries and sequence numbers,
which the HTTP view drops), and fork (see devhost.fork). Documented in devhost/server/dashboard/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from ...client import TaskHubClient
from ...fork import ForkError, fork_instance
from ...history_view import export_instance
from ...versioning import version_of
from ..http import BadRequest, Query, error_response, instance_query, page_response, query_page, read_json_object, route
from ..payloads import status_payload

STATIC_DIR = Path(__file__).parent / "static"
API = "/devhost/api"


def static_files(root: Path = STATIC_DIR) -> dict[str, Path]:
    """The dashboard's files by URL name. Serving only these (rather than resolving whatever name a
    request carries on the file system) means `..`, 5,000-character names and the like are a plain 404."""
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


class DashboardApi:
    """Handlers for one task hub's client."""

    def __init__(self, client: TaskHubClient) -> None:
        self.client = client
        self.files = static_files()

    async def static(self, request: web.Request, q: Query) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.files.get(name)
        if path is None:
            return error_response(404, f"The dashboard has no file '{name[:100]}'.")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def index(self, request: web.Request, q: Query) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def redirect(self, request: web.Request, q: Query) -> web.StreamResponse:
        raise web.HTTPFound("/dashboard/")

    async def list_instances(self, request: web.Request, q: Query) -> web.StreamResponse:
        """The Durable API's list plus `name` (case-insensitive); one store page per call, never a scan.

        A page filtered by name may hold fewer than `top` rows (even none) and still have a continuation
        token: the Azure store applies the name filter to each page it reads."""
        page = await query_page(self.client, instance_query(q, request, name=q.get("name") or None))
        return page_response([status_payload(i, show_input=False) for i in page.instances], page)

    async def history(self, request: web.Request, q: Query) -> web.StreamResponse:
        """The store's own events for the current execution (history_view.export_instance) + the parent link."""
        iid = request.match_info["instanceId"]
        inst = await self.client.get(iid, history=True)
        if inst is None:
            return error_response(404, f"No instance with ID '{iid}' was found.")
        body: dict[str, Any] = export_instance(inst)
        body["parentInstanceId"] = inst.parent_instance_id
        body["runtimeStatus"] = inst.runtime_status.value
        body["version"] = version_of(inst.history)
        return web.json_response(body)

    async def fork(self, request: web.Request, q: Query) -> web.StreamResponse:
        """POST {"atEvent": int, "newInstanceId"?: str} -> 201 {"instanceId", "cutAt", "episodesKept", ...}."""
        body = await read_json_object(request, '{"atEvent": 12}')
        at_event = body.get("atEvent")
        if not isinstance(at_event, int) or isinstance(at_event, bool):
            raise BadRequest("'atEvent' must be the index of an event in the full history (an integer).")
        new_id = body.get("newInstanceId") or None
        if new_id is not None and not isinstance(new_id, str):
            raise BadRequest("'newInstanceId' must be a string.")
        try:
            iid, fork = await fork_instance(self.client, request.match_info["instanceId"], at_event, new_id)
        except ForkError as exc:
            return error_response(exc.status, str(exc), exc)
        return web.json_response(
            {
                "instanceId": iid,
                "forkedFrom": request.match_info["instanceId"],
                "cutAt": fork.cut,
                "episodesKept": fork.episodes,
                "pendingSent": len(fork.messages),
                "statusUrl": f"/runtime/webhooks/durabletask/instances/{iid}",
            },
            status=201,
        )

    async def not_found(self, request: web.Request, q: Query) -> web.StreamResponse:
        return error_response(404, f"No devhost API route matches {request.method} {request.rel_url.path}.")


def add_dashboard_routes(app: web.Application, client: TaskHubClient) -> None:
    """Mount /dashboard (static) and /devhost/api/*; call before any catch-all route."""
    api = DashboardApi(client)
    r = app.router
    r.add_get("/dashboard", route(api.redirect))
    r.add_get("/dashboard/", route(api.index))
    r.add_get("/dashboard/static/{name:.*}", route(api.static))
    r.add_get(API + "/instances", route(api.list_instances))
    r.add_get(API + "/instances/{instanceId}/history", route(api.history))
    r.add_post(API + "/instances/{instanceId}/fork", route(api.fork))
    r.add_route("*", API + "/{tail:.*}", route(api.not_found))
