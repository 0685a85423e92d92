"""Start rollouts from the Service Bus queue `update-requests` (same JSON as the HTTP API).

Idempotent: the instance id is the request's updateId, else the message id, so a
redelivered message does not start a second rollout. An invalid message is logged
with its reasons and raised, so Service Bus retries it and then dead-letters it.
"""

from __future__ import annotations

import hashlib
import json
import logging

import azure.durable_functions as df
import azure.functions as func

from update_service.requests import ID_PATTERN, InvalidRequest, parse_update_request
from update_service.settings import SERVICE_BUS_CONNECTION, UPDATE_REQUESTS_QUEUE

from .http_api import ORCHESTRATOR, _status

bp = df.Blueprint()
log = logging.getLogger(__name__)


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
        log.error("update request message %s is invalid and will be dead-lettered: %s",
                  message.message_id, "; ".join(problems))
        raise
    update_id = request.update_id or instance_id_for(message.message_id)
    if await _status(client, update_id) is not None:
        log.info("update %s already exists; message %s ignored", update_id, message.message_id)
        return
    try:
        await client.start_new(ORCHESTRATOR, update_id, request.with_id(update_id).to_json())
    except Exception:  # noqa: BLE001 - a concurrent message with the same updateId won the race
        if await _status(client, update_id) is None:
            raise
        log.info("update %s already exists; message %s ignored", update_id, message.message_id)
        return
    log.info("started update %s from message %s", update_id, message.message_id)
