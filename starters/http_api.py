"""The rollout HTTP API: start, inspect, list, approve/reject, cancel.

POST /api/updates                  start (updateId is an idempotency key) -> 202 + status links;
                                   200 for the same request again, 409 for another under that id
GET  /api/updates/{id}             status, phase, progress, and the report when done
GET  /api/updates?status=&top=&continuationToken=
POST /api/updates/{id}/approve | /reject | /cancel
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus as Status

from orchestrators.update_rollout import APPROVAL_EVENT, CANCEL_EVENT
from update_service.requests import ID_PATTERN, InvalidRequest, parse_update_request

from .responses import json_response, problem

bp = df.Blueprint()
ORCHESTRATOR = "update_rollout"
ACTIVE = {Status.Running, Status.Pending, Status.Suspended, Status.ContinuedAsNew}
MAX_PAGE = 100
QUERY_PAGE = 100  # the Durable HTTP API's default page size
CONTINUATION = "x-ms-continuation-token"


async def _status(client: df.DurableOrchestrationClient, update_id: str, show_input: bool = False) -> Any:
    """The rollout's status, or None for unknown ids (and for wave sub-orchestrations)."""
    if not ID_PATTERN.match(update_id):
        return None
    status = await client.get_status(update_id, show_input=show_input)
    if not status or status.name != ORCHESTRATOR:
        return None
    return status


async def _query_instances(client: df.DurableOrchestrationClient, statuses: list[Status]) -> list[Any]:
    """Every instance with one of `statuses` (all when empty), following the continuation token page by
    page: the SDK's get_status_all/get_status_by return only the first page of 100 instances
    (Azure/azure-functions-durable-python#580), and each rollout also has an instance per wave."""
    base = client._orchestration_bindings.rpc_base_url
    query = {"top": str(QUERY_PAGE), "showInput": "false"}
    if statuses:
        query["runtimeStatus"] = ",".join(s.value for s in statuses)
    url = f"{base}instances/?{urlencode(query, safe=',')}"
    found: list[Any] = []
    token: str | None = None
    seen: set[str] = set()
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url, headers={CONTINUATION: token} if token else {}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"listing instances failed: {resp.status} {(await resp.text())[:200]}")
                found += [DurableOrchestrationStatus.from_json(o) for o in await resp.json(content_type=None)]
                token = resp.headers.get(CONTINUATION)
            if not token or token in seen:  # a repeated token would loop forever
                return found
            seen.add(token)


def _view(status: Any) -> dict[str, Any]:
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    done = status.runtime_status == Status.Completed
    return {
        "updateId": status.instance_id,
        "runtimeStatus": status.runtime_status.name if status.runtime_status else None,
        "phase": custom.get("phase"),
        "outcome": custom.get("outcome") or ((status.output or {}).get("outcome") if done else None),
        "progress": custom,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
        "report": status.output if done else None,
        "error": status.output if status.runtime_status == Status.Failed else None,
    }


@bp.route(route="updates", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        body = req.get_json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply to decode
        return problem(400, "The request body is not valid JSON.")
    try:
        request = parse_update_request(body)
    except InvalidRequest as invalid:
        return problem(400, *invalid.problems)
    update_id = request.update_id or uuid.uuid4().hex
    wanted = request.with_id(update_id).to_json()
    existing = await _status(client, update_id, show_input=True)
    if existing is None:
        try:
            await client.start_new(ORCHESTRATOR, update_id, wanted)
        except Exception:  # noqa: BLE001 - a concurrent start of the same id won the race
            existing = await _status(client, update_id, show_input=True)
            if existing is None:
                raise
    response = client.create_check_status_response(req, update_id)
    if existing is None:
        return response
    # updateId is an idempotency key: the same request gets the rollout already started; a
    # different request under the same id is refused, so exactly one body ever runs.
    links = json.loads(response.get_body())
    headers = {"Location": links["statusQueryGetUri"]}
    view = {**links, "existing": True, "runtimeStatus": existing.runtime_status.name}
    if not same_request(existing.input_, wanted):
        return json_response(
            {
                **view,
                "error": f"Update '{update_id}' already exists with a different request; use a new updateId.",
                "problems": [f"Update '{update_id}' already exists with a different request."],
            },
            409,
            headers,
        )
    return json_response(view, 200, headers)


def same_request(stored: Any, wanted: dict[str, Any]) -> bool:
    """Whether a rollout's stored input is this request (both normalised by `parse_update_request`)."""
    if isinstance(stored, str):  # some hosts hand the input back as JSON text
        try:
            stored = json.loads(stored)
        except ValueError:
            return False
    return json.dumps(stored, sort_keys=True) == json.dumps(wanted, sort_keys=True)


@bp.route(route="updates/{updateId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    update_id = req.route_params.get("updateId", "")
    status = await _status(client, update_id)
    if status is None:
        return problem(404, f"No update with id '{update_id}'.")
    return json_response(_view(status))


@bp.route(route="updates", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_updates(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    problems: list[str] = []
    statuses: list[Status] = []
    for name in filter(None, (req.params.get("status") or "").split(",")):
        match = next((s for s in Status if s.name.lower() == name.strip().lower()), None)
        if match is None:
            problems.append(f"Unknown status '{name}'. Use one of: {', '.join(s.name for s in Status)}.")
        else:
            statuses.append(match)
    try:
        top = int(req.params.get("top") or 20)
        offset = int(req.params.get("continuationToken") or 0)
        if not 1 <= top <= MAX_PAGE or offset < 0:
            raise ValueError
    except ValueError:
        problems.append(f"'top' must be 1-{MAX_PAGE} and 'continuationToken' a token from a previous page.")
    if problems:
        return problem(400, *problems)
    found = await _query_instances(client, statuses)
    rollouts = sorted((s for s in found if s.name == ORCHESTRATOR), key=lambda s: s.created_time, reverse=True)
    page = rollouts[offset : offset + top]
    token = str(offset + top) if offset + top < len(rollouts) else None
    return json_response({"updates": [_view(s) for s in page], "continuationToken": token})


async def _decide(req: func.HttpRequest, client: df.DurableOrchestrationClient, approved: bool) -> func.HttpResponse:
    update_id = req.route_params.get("updateId", "")
    status = await _status(client, update_id)
    if status is None:
        return problem(404, f"No update with id '{update_id}'.")
    phase = (status.custom_status or {}).get("phase") if isinstance(status.custom_status, dict) else None
    if status.runtime_status not in ACTIVE or phase != "awaiting_approval":
        return problem(
            409,
            f"Update '{update_id}' is not waiting for approval (phase: {phase}, status: {status.runtime_status.name}).",
        )
    try:
        body = req.get_json() if req.get_body() else {}
    except (ValueError, RecursionError):
        return problem(400, "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return problem(400, 'The request body must be a JSON object like {"by": "ana", "comment": "ok"}.')
    decision = {"approved": approved, "by": body.get("by"), "comment": body.get("comment")}
    await client.raise_event(update_id, APPROVAL_EVENT, decision)
    return json_response({"updateId": update_id, "accepted": "approve" if approved else "reject"}, 202)


@bp.route(route="updates/{updateId}/approve", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approve_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _decide(req, client, approved=True)


@bp.route(route="updates/{updateId}/reject", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def reject_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _decide(req, client, approved=False)


@bp.route(route="updates/{updateId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    update_id = req.route_params.get("updateId", "")
    status = await _status(client, update_id)
    if status is None:
        return problem(404, f"No update with id '{update_id}'.")
    if status.runtime_status not in ACTIVE:
        return problem(409, f"Update '{update_id}' has already finished ({status.runtime_status.name}).")
    await client.raise_event(update_id, CANCEL_EVENT, {"requested": True})
    return json_response({"updateId": update_id, "accepted": "cancel"}, 202)
