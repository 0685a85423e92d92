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
import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..client import ClientError, Gone, NotFound, TaskHubClient, validate_instance_id
from ..entities import parse_entity_id
from ..history import TERMINAL_STATUSES, RuntimeStatus
from ..jsontext import parse_json_text
from ..model import Instance, new_guid
from ..store.base import InstanceQuery
from .binding import WEBHOOK_PATH, check_status_payload
from .http import (
    CONTINUATION,
    MAX_PAGE,
    BadRequest,
    Query,
    QueryHandler,
    error_response,
    instance_query,
    page_response,
    parse_json,
    query_page,
    read_body,
    read_json_body,
    route,
)
from .payloads import format_precise_time, status_payload

log = logging.getLogger("devhost")


class DurableHttpApi:
    """aiohttp handlers for one task hub; `add_routes` mounts them (testable without the CLI)."""

    def __init__(
        self, client: TaskHubClient, *, hub: str, connection: str | None = None, poll_interval_cap: float = 1.0
    ) -> None:
        self.client = client
        self.hub = hub
        self.connection = connection
        self.poll_interval_cap = poll_interval_cap

    # ---------------------------------------------------------------- mounting
    def add_routes(self, app: web.Application, base: str = WEBHOOK_PATH) -> None:
        base = base.rstrip("/")
        r = app.router
        table: list[tuple[str, str, QueryHandler]] = [
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
            ("POST", "/entities/{entityName}", self.signal_without_key),
            ("DELETE", "/entities/{entityName}", self.signal_without_key),
        ]
        for method, path, handler in table:
            r.add_route(method, base + path, route(handler, hub=self.hub))
        r.add_route("*", base + "/{tail:.*}", route(self.not_found))

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _check_status(self, request: web.Request, instance_id: str) -> web.Response:
        body = check_status_payload(self._origin(request), self.hub, self.connection, instance_id)
        return web.json_response(body, status=202, headers={"Location": body["statusQueryGetUri"], "Retry-After": "10"})

    async def _load(self, instance_id: str, *, history: bool = False) -> Instance:
        inst = await self.client.get(instance_id, history=history)
        if inst is None:
            raise _not_found(instance_id)
        return inst

    async def _wait_response(
        self, request: web.Request, instance_id: str, timeout: float, interval: float
    ) -> web.Response:
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
        if interval > timeout:
            # WaitForCompletionOrCreateCheckStatusResponseAsync throws ArgumentException (HttpApiHandler.cs 204),
            # answered as a 400 by the route's catch (HttpApiHandler.cs 452).
            raise BadRequest(
                "One or more of the arguments submitted is incorrect: total timeout "
                f"{timeout:g} should be bigger than retry timeout {interval:g}"
            )
        return timeout, interval

    # -------------------------------------------------------------- orchestrations
    async def start(self, request: web.Request, q: Query) -> web.StreamResponse:
        name = request.match_info["functionName"]
        instance_id = request.match_info.get("instanceId")
        if instance_id is not None:
            validate_instance_id(instance_id)
        present, value = await read_json_body(request)
        input_text = json.dumps(value) if present else None
        # ?version= (the SDK's start_new(version=)), else host.json defaultVersion: HttpApiHandler.cs
        # HandleStartOrchestratorRequestAsync, `queryNameValuePairs[VersionParameter] ?? Options.DefaultVersion`.
        iid = await self.client.start(name, input_text, instance_id, version=request.query.get("version"))
        wait = self._wait_params(q)
        if wait is not None:
            return await self._wait_response(request, iid, *wait)
        return self._check_status(request, iid)

    async def get_instance(self, request: web.Request, q: Query) -> web.StreamResponse:
        show_history = q.boolean("showHistory", False)
        show_history_output = q.boolean("showHistoryOutput", False)
        show_input = q.boolean("showInput", True)
        fail_500 = q.boolean("returnInternalServerErrorOnFailure", False)
        inst = await self._load(request.match_info["instanceId"], history=show_history)
        body = status_payload(
            inst, show_input=show_input, show_history=show_history, show_history_output=show_history_output
        )
        if inst.runtime_status.is_terminal:
            status = 500 if fail_500 and inst.runtime_status == RuntimeStatus.FAILED else 200
            return web.json_response(body, status=status)
        return web.json_response(body, status=202, headers={"Location": str(request.url), "Retry-After": "5"})

    async def list_instances(self, request: web.Request, q: Query) -> web.StreamResponse:
        """Inputs shown unless `showInput=false` (OrchestrationStatusQueryCondition.ShowInput = true, 79), and
        entity instances (`@name@key`, Running) listed with the orchestrations, as the Azure Storage provider
        does (no entity exclusion in ConvertWebjobsDurableConditionToAzureStorageCondition, 212)."""
        show_input = q.boolean("showInput", True)
        page = await query_page(self.client, instance_query(q, request, entities=None))
        return page_response(
            [status_payload(i, show_input=show_input) for i in page.instances], page, always_header=True
        )

    async def purge_instance(self, request: web.Request, q: Query) -> web.StreamResponse:
        """Purges whatever the status, a running instance too (HttpApiHandler.cs 554: 404 only when there is no
        instance; AzureTableTrackingStore.PurgeInstanceHistoryAsync(instanceId), DTFx AzureStorage 801)."""
        iid = request.match_info["instanceId"]
        if await self.client.get(iid) is None:
            raise _not_found(iid)
        deleted = await self.client.store.purge(iid)
        if not deleted:
            raise _not_found(iid)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def purge_by_filter(self, request: web.Request, q: Query) -> web.StreamResponse:
        """Unfinished statuses are dropped from the requested ones (AzureTableTrackingStore.cs 843); when none
        is left (no `runtimeStatus`, the SDK's default, or only unfinished ones) there is no status filter
        at all (OrchestrationInstanceStatusQueryCondition.GetConditions, 133): every instance created in the
        range is purged, running ones and entities included."""
        created_from = q.time("createdTimeFrom")
        if created_from is None:
            raise BadRequest("Please provide value for 'createdTimeFrom' parameter.")
        statuses = [s for s in (q.statuses("runtimeStatus") or []) if s in TERMINAL_STATUSES]
        query = InstanceQuery(
            runtime_status=statuses or None,
            created_from=created_from,
            created_to=q.time("createdTimeTo") or datetime.now(UTC),
            entities=None,
            page_size=MAX_PAGE,
        )
        ids: list[str] = []
        while True:
            page = await query_page(self.client, query)
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

    async def raise_event(self, request: web.Request, q: Query) -> web.StreamResponse:
        """As HandleRaiseEventRequestAsync (HttpApiHandler.cs 978): 404/410 by status first, then the content
        must be JSON (`application/json`, 1001; an empty body does not parse, 1011) or it is a 400."""
        iid, name = request.match_info["instanceId"], request.match_info["eventName"]
        inst = await self.client.get(iid)
        if inst is None:
            raise _not_found(iid)
        if inst.runtime_status.is_terminal:
            raise Gone(f"Instance '{iid}' is {inst.runtime_status.value}; it takes no more events.")
        if request.content_type.lower() != "application/json":
            raise BadRequest("Only application/json request content is supported")
        data_text = json.dumps(parse_json(await read_body(request)))
        await self.client.raise_event(iid, name, data_text)
        return web.Response(status=202)

    async def terminate(self, request: web.Request, q: Query) -> web.StreamResponse:
        await self.client.terminate(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def suspend(self, request: web.Request, q: Query) -> web.StreamResponse:
        await self.client.suspend(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def resume(self, request: web.Request, q: Query) -> web.StreamResponse:
        await self.client.resume(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def rewind(self, request: web.Request, q: Query) -> web.StreamResponse:
        await self.client.rewind(request.match_info["instanceId"], q.get("reason"))
        return web.Response(status=202)

    async def restart(self, request: web.Request, q: Query) -> web.StreamResponse:
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

    async def read_entity(self, request: web.Request, q: Query) -> web.StreamResponse:
        name, key = request.match_info["entityName"], self._entity_key(request)
        exists, state = await self.client.read_entity(name, key)
        if not exists:
            return error_response(404, f"No entity '@{name.lower()}@{key}' with state was found.")
        return web.Response(status=200, text=state if state is not None else "null", content_type="application/json")

    async def signal_entity(self, request: web.Request, q: Query) -> web.StreamResponse:
        """As HandlePostEntityOperationRequestAsync (HttpApiHandler.cs 1046): a JSON body is the operation input
        encoded once (ConvertToJToken, 1077), any other body is the input as a string. The SDK's own client
        sends its input as a JSON string, so only raw HTTP callers with a non-string JSON body see the SDK's
        `get_input` fail, on Azure as here (the failed operation is logged, devhost.entities)."""
        name, key = request.match_info["entityName"], self._entity_key(request)
        raw = await read_body(request)
        if not raw.strip():
            await self.client.signal_entity(name, key, q.get("op") or "", None)
            return web.Response(status=202)
        if request.content_type.lower() == "application/json":
            value = parse_json(raw, "Could not parse JSON content")
            await self.client.signal_entity(name, key, q.get("op") or "", None, input_json=json.dumps(value))
            return web.Response(status=202)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("The request body must be UTF-8 text.") from None
        await self.client.signal_entity(name, key, q.get("op") or "", text)
        return web.Response(status=202)

    async def signal_without_key(self, request: web.Request, q: Query) -> web.StreamResponse:
        """`POST|DELETE /entities/{name}`: EntityId(name, null) throws (EntityId.cs 29): a 400 (HttpApiHandler.cs
        343)."""
        raise BadRequest("Invalid entity id: entity key must not be null.")

    async def delete_entity(self, request: web.Request, q: Query) -> web.StreamResponse:
        await self.client.signal_entity(request.match_info["entityName"], self._entity_key(request), "delete", None)
        return web.Response(status=202)

    async def list_entities(self, request: web.Request, q: Query) -> web.StreamResponse:
        name = request.match_info.get("entityName")
        fetch_state = q.boolean("fetchState", False)
        time_from, time_to = q.time("lastOperationTimeFrom"), q.time("lastOperationTimeTo")
        query = InstanceQuery(
            entities=True,
            instance_id_prefix=f"@{name.lower()}@" if name else None,
            page_size=q.integer("top", 100, maximum=MAX_PAGE),
            continuation=request.headers.get(CONTINUATION) or None,
        )
        page = await query_page(self.client, query)
        body: list[dict[str, Any]] = []
        for inst in page.instances:
            if not inst.entity_exists:
                continue
            if time_from and inst.last_updated_time < time_from or time_to and inst.last_updated_time > time_to:
                continue
            entity_name, key = parse_entity_id(inst.instance_id)
            # EntityStatus: `state` always present (null without fetchState), the time at full precision.
            body.append(
                {
                    "entityId": {"name": entity_name, "key": key},
                    "lastOperationTime": format_precise_time(inst.last_updated_time),
                    "state": parse_json_text(inst.entity_state) if fetch_state else None,
                }
            )
        return page_response(body, page, always_header=True)

    async def not_found(self, request: web.Request, q: Query) -> web.StreamResponse:
        return error_response(404, f"No Durable HTTP API route matches {request.method} {request.rel_url.path}.")


def _not_found(instance_id: str) -> ClientError:
    return NotFound(f"No instance with ID '{instance_id}' was found.")
