"""Start rollouts from the Service Bus queue `update-requests` (same JSON as the HTTP API).

Idempotent: the instance id is the request's updateId, else the message id, so a
redelivered message does not start a second rollout. An invalid message, and one whose
updateId already belongs to a different request (the HTTP API answers that with 409), is
logged with its reasons and raised, so Service Bus retries it and then dead-letters it:
exactly one body ever runs under an updateId.
"""

from __future__ import annotations

import hashlib
import json
import logging

import azure.durable_functions as df
import azure.functions as func

from update_service.requests import ID_PATTERN, InvalidRequest, parse_update_request
from update_service.settings import SERVICE_BUS_CONNECTION, UPDATE_REQUESTS_QUEUE

from .http_api import ORCHESTRATOR, _status, same_request

bp = df.Blueprint()
log = logging.getLogger(__name__)


class ConflictingRequest(Exception):
    """The message's updateId already belongs to a rollout started with a different request."""


async def _already_started(
    client: df.DurableOrchestrationClient, update_id: str, wanted: dict[str, object], message_id: str | None
) -> bool:
    """True if the rollout exists with this very request (a redelivery or a duplicate: nothing to do);
    False if it does not exist; `ConflictingRequest` if it exists with another request."""
    existing = await _status(client, update_id, show_input=True)
    if existing is None:
        return False
    if not same_request(existing.input_, wanted):
        log.error(
            "update request message %s conflicts with update %s, which already exists with a different "
            "request, and will be dead-lettered; use a new updateId",
            message_id,
            update_id,
        )
        raise ConflictingRequest(f"Update '{update_id}' already exists with a different request.")
    log.info("update %s already exists; message %s ignored", update_id, message_id)
    return True


def instance_id_for(message_id: str | None) -> str:
    if message_id and ID_PATTERN.match(message_id):
        return message_id
    return "msg-" + hashlib.sha256((message_id or "").encode()).hexdigest()[:32]


@bp.service_bus_queue_trigger(arg_name="message", queue_name=UPDATE_REQUESTS_QUEUE, connection=SERVICE_BUS_CONNECTION)
@bp.durable_client_input(client_name="client")
async def start_update_from_queue(message: func.ServiceBusMessage, client: df.DurableOrchestrationClient) -> None:
    try:
        request = parse_update_request(json.loads(message.get_body().decode("utf-8")))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        problems = error.problems if isinstance(error, InvalidRequest) else [f"not JSON: {error}"]
        log.error(
            "update request message %s is invalid and will be dead-lettered: %s",
            message.message_id,
            "; ".join(problems),
        )
        raise
    update_id = request.update_id or instance_id_for(message.message_id)
    wanted = request.with_id(update_id).to_json()
    if await _already_started(client, update_id, wanted, message.message_id):
        return
    try:
        await client.start_new(ORCHESTRATOR, update_id, wanted)
    except Exception:  # noqa: BLE001 - a concurrent start with the same updateId won the race
        if not await _already_started(client, update_id, wanted, message.message_id):
            raise
        return
    log.info("started update %s from message %s", update_id, message.message_id)
