"""Client operations on a task hub (what the Durable client binding and HTTP API do).

Each operation validates, then sends a message to the instance's control queue, as
the extension does (docs/durable-protocol.md §7.6). The harness and the HTTP API share this.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import history as h
from . import tracing
from .entities import entity_instance_id
from .history import Event, RuntimeStatus
from .index import AppIndex
from .model import Instance, Message, new_guid
from .store.base import ConcurrencyError, InstanceQuery, QueryPage, Store
from .versioning import Versioning

ACTIVE_STATUSES = frozenset(
    {RuntimeStatus.RUNNING, RuntimeStatus.PENDING, RuntimeStatus.SUSPENDED, RuntimeStatus.CONTINUED_AS_NEW}
)
_BAD_ID = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


class ClientError(Exception):
    """A request the hub refuses; `status` is the HTTP status the Durable API uses for it."""

    status = 400


class NotFound(ClientError):
    status = 404


class Gone(ClientError):
    status = 410


class Conflict(ClientError):
    status = 409


def validate_instance_id(instance_id: str) -> None:
    if not instance_id:
        raise ClientError("Instance ID must not be empty.")
    if len(instance_id) > 256:
        raise ClientError("Instance ID must be at most 256 characters long.")
    if instance_id.startswith("@"):
        raise ClientError(f"Instance ID '{instance_id}' must not start with '@' (reserved for entities).")
    if _BAD_ID.search(instance_id):
        raise ClientError(f"Instance ID {instance_id!r} must not contain '/', '\\', '#', '?' or control characters.")


@dataclass
class TaskHubClient:
    app: AppIndex
    store: Store
    versioning: Versioning = field(default_factory=Versioning)

    async def start(
        self, name: str, input_text: str | None = None, instance_id: str | None = None, version: str | None = None
    ) -> str:
        """Start an orchestration; `input_text` is the stored input as JSON text.

        `version` (None: host.json's defaultVersion) is the instance's for life: `context.version`."""
        if self.app.orchestrator(name) is None:
            raise ClientError(f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.")
        iid = instance_id if instance_id is not None else new_guid()
        validate_instance_id(iid)
        existing = await self.store.load(iid, history=False)
        if existing is not None and existing.runtime_status in ACTIVE_STATUSES:
            raise Conflict(f"An Orchestration instance with the status {existing.runtime_status.value} already exists.")
        now = self.store.clock.now()
        execution_id = new_guid()
        generation = existing.generation + 1 if existing is not None else 0
        start = h.execution_started(
            now,
            instance_id=iid,
            execution_id=execution_id,
            name=name,
            input_text=input_text,
            generation=generation,
            version=self.versioning.version_for_new(version),
        )
        if tracing.active is not None:  # create_orchestration span; its context goes in ExecutionStarted
            tracing.active.new_orchestration(start)
        record = Instance(
            instance_id=iid,
            name=name,
            runtime_status=RuntimeStatus.PENDING,
            execution_id=execution_id,
            created_time=now,
            last_updated_time=now,
            input=input_text,
            generation=generation,
            etag=existing.etag if existing is not None else None,
        )
        # DTFx order: the start message first, then the Pending row. If the dispatcher got
        # there in between, the row is already newer than ours: that is success.
        await self.store.enqueue([Message(iid, start, execution_id=execution_id)])
        try:
            await self.store.create(record)
        except ConcurrencyError:
            current = await self.store.load(iid, history=False)
            if current is None or current.execution_id != execution_id:
                raise Conflict(f"Instance '{iid}' was started concurrently by another client.") from None
        return iid

    async def _require(self, instance_id: str) -> Instance:
        inst = await self.store.load(instance_id, history=False)
        if inst is None:
            raise NotFound(f"No instance with ID '{instance_id}' was found.")
        return inst

    async def _send(self, instance_id: str, event: Event) -> None:
        await self.store.enqueue([Message(instance_id, event)])

    async def raise_event(self, instance_id: str, name: str, data_text: str | None) -> None:
        if not name:
            raise ClientError("Event name must not be empty.")
        inst = await self._require(instance_id)
        if inst.runtime_status.is_terminal:
            raise Gone(f"Instance '{instance_id}' is {inst.runtime_status.value}; it takes no more events.")
        await self._send(instance_id, h.event_raised(self.store.clock.now(), name, data_text))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        inst = await self._require(instance_id)
        if inst.runtime_status.is_terminal:
            raise Gone(f"Instance '{instance_id}' is already {inst.runtime_status.value}.")
        await self._send(instance_id, h.execution_terminated(self.store.clock.now(), reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        inst = await self._require(instance_id)
        if inst.runtime_status.is_terminal:
            raise Gone(f"Instance '{instance_id}' is already {inst.runtime_status.value}.")
        if inst.runtime_status == RuntimeStatus.SUSPENDED:
            raise Conflict(f"Instance '{instance_id}' is already suspended.")
        await self._send(instance_id, h.execution_suspended(self.store.clock.now(), reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        inst = await self._require(instance_id)
        if inst.runtime_status.is_terminal:
            raise Gone(f"Instance '{instance_id}' is already {inst.runtime_status.value}.")
        if inst.runtime_status != RuntimeStatus.SUSPENDED:
            raise Conflict(f"Instance '{instance_id}' is not suspended.")
        await self._send(instance_id, h.execution_resumed(self.store.clock.now(), reason))

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        """Run a failed instance again from its failure (failed tasks and children re-run)."""
        inst = await self._require(instance_id)
        if inst.runtime_status in (RuntimeStatus.COMPLETED, RuntimeStatus.CANCELED, RuntimeStatus.TERMINATED):
            raise Gone(
                f"Instance '{instance_id}' is {inst.runtime_status.value}; only failed instances can be rewound."
            )
        if inst.runtime_status != RuntimeStatus.FAILED:
            raise Conflict(
                f"Instance '{instance_id}' is {inst.runtime_status.value}; only failed instances can be rewound."
            )
        await self._send(instance_id, h.execution_rewound(self.store.clock.now(), reason))

    async def get(self, instance_id: str, *, history: bool = False) -> Instance | None:
        return await self.store.load(instance_id, history=history)

    async def query(self, query: InstanceQuery) -> QueryPage:
        return await self.store.query(query)

    async def purge(self, instance_id: str) -> int:
        inst = await self.store.load(instance_id, history=False)
        if inst is None:
            return 0
        if not inst.runtime_status.is_terminal:
            raise Conflict(
                f"Instance '{instance_id}' is {inst.runtime_status.value}; only finished instances are purged."
            )
        return await self.store.purge(instance_id)

    async def signal_entity(
        self, name: str, key: str, operation: str, input_text: str | None, *, input_json: str | None = None
    ) -> None:
        """`input_text` is the operation input as JSON text (the entity decodes it), stored as a JSON string as
        the SDK's client sends it. `input_json` is stored as it is: the extension's HTTP API passes a raw JSON
        body encoded once (HttpApiHandler.cs 1077)."""
        if self.app.entity(name) is None:
            raise ClientError(f"The function '{name}' doesn't exist, is disabled, or is not an entity function.")
        if _BAD_ID.search(key):
            raise ClientError(f"Entity key {key!r} must not contain '/', '\\', '#', '?' or control characters.")
        request: dict[str, Any] = {"op": operation, "signal": True, "id": new_guid()}
        if input_json is not None:
            request["input"] = input_json
        elif input_text is not None:
            request["input"] = json.dumps(input_text)
        target = entity_instance_id(name, key)
        event = h.event_raised(self.store.clock.now(), "op", json.dumps(request))
        if tracing.active is not None:  # the caller's span is the signal's parent
            tracing.active.client_signal(event)
        await self.store.enqueue([Message(target, event)])

    async def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        inst = await self.store.load(entity_instance_id(name, key), history=False)
        if inst is None or not inst.entity_exists:
            return False, None
        return True, inst.entity_state
