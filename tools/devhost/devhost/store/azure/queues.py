"""Control and work-item queues: sending, receiving and settling messages (DTFx's `ControlQueue`,
`WorkItemQueue` and `MessageManager`). A message body is devhost's JSON envelope; one too large for
a queue message goes to a blob and the queue carries its name (as DTFx's `CompressedBlobName`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError, ServiceRequestError
from azure.core.rest import HttpRequest
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ...clock import Clock
from ...history import EVENT_NAMES, format_ts, parse_ts
from ...model import Message, Queue, Receipt
from . import lean
from .blobs import LargeMessages
from .layout import MAX_DELAY_SECONDS, MAX_QUEUE_MESSAGE_BYTES, RECEIVE_BATCH, HubLayout, sanitize_key

log = logging.getLogger("devhost.store")

# A message written by the Azure Functions host (DTFx's `MessageData`, MessageData.cs) is hidden
# this long: devhost cannot read it, must not delete another host's work, and must not spin on it.
FOREIGN_HIDE_SECONDS = 3600


def is_dtfx_envelope(data: dict[str, Any]) -> bool:
    """DurableTask.AzureStorage's `MessageData` (a `TaskMessage` plus sequence number and blob name),
    as opposed to devhost's own envelope (`instance_id`, `event`)."""
    return "TaskMessage" in data or (
        "instance_id" not in data and ("SequenceNumber" in data or "CompressedBlobName" in data)
    )


class HubQueues:
    # How often a queue that came back empty is polled again when nothing local hints at new
    # messages (messages sent by other processes, expired visibility timeouts).
    idle_poll_seconds = 0.2
    # With the hub lease held, every sender to this hub is this object (which marks what it
    # sends), so idle queues only need a slow poll for expired visibility timeouts.
    leased_idle_poll_seconds = 2.0

    def __init__(
        self,
        service: QueueServiceClient,
        layout: HubLayout,
        blobs: LargeMessages,
        clock: Clock,
        leased: Callable[[], bool],
    ) -> None:
        self.layout = layout
        self.clock = clock
        self._blobs = blobs
        self._leased = leased
        self.control_queue_names = layout.control_queues
        self.work_queue_name = layout.work_queue
        self.clients: dict[str, QueueClient] = {
            name: service.get_queue_client(name) for name in [*self.control_queue_names, self.work_queue_name]
        }
        self.poison_client: QueueClient = service.get_queue_client(layout.poison_queue)
        self._message_blobs: dict[str, str] = {}
        self._foreign_seen = False
        self._next_control = 0
        # Polling hints (see `dequeue`): when each queue may next hold a visible message, and a
        # counter of local sends so a receive racing a send does not mark the queue idle.
        self._hot_at: dict[str, float] = dict.fromkeys(self.clients, 0.0)
        self._sends: dict[str, int] = dict.fromkeys(self.clients, 0)
        # Set when this store sends a message visible at once: wakes an idle dispatcher
        # (as the memory store's does) instead of leaving it to its next poll.
        self.changed = asyncio.Event()

    async def create(self) -> None:
        async def queue(client: QueueClient) -> None:
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()

        await asyncio.gather(*(queue(q) for q in [*self.clients.values(), self.poison_client]))

    async def close(self) -> None:
        for client in [*self.clients.values(), self.poison_client]:
            with contextlib.suppress(Exception):
                await client.close()

    # ------------------------------------------------------------------ send
    def _queue_for(self, msg: Message) -> str:
        return self.work_queue_name if msg.queue == "work" else self.layout.control_queue_for(msg.instance_id)

    async def enqueue(self, messages: Sequence[Message]) -> None:
        if messages:
            now = self.clock.now()
            await asyncio.gather(*(self._send(m, now) for m in messages))

    async def _send(self, msg: Message, now: datetime, poison: bool = False) -> None:
        body = json.dumps(
            {
                "id": msg.id,
                "instance_id": msg.instance_id,
                "execution_id": msg.execution_id,
                "queue": msg.queue,
                "event": msg.event,
                "visible_at": format_ts(msg.visible_at) if msg.visible_at else None,
                "sender": msg.sender,
            },
            separators=(",", ":"),
        )
        size = len(body.encode("utf-8"))
        if size * 5 > MAX_QUEUE_MESSAGE_BYTES:  # the body travels XML-escaped: measure that when it may matter
            size = len(xml_escape(body).encode("utf-8"))
        if size > MAX_QUEUE_MESSAGE_BYTES:
            type_name = EVENT_NAMES.get(msg.event.get("EventType", -1), "Event")
            name = f"{sanitize_key(msg.instance_id)}/message-{msg.id}-{type_name}.json.gz"
            await self._blobs.put(name, body)
            body = json.dumps({"CompressedBlobName": name, "id": msg.id, "instance_id": msg.instance_id})
        delay = 0
        if msg.visible_at is not None and msg.visible_at > now:
            delay = min(math.ceil((msg.visible_at - now).total_seconds()), MAX_DELAY_SECONDS)
        if poison:  # kept, never received by the dispatcher
            await self.poison_client.send_message(body, time_to_live=-1)
            return
        name = self._queue_for(msg)
        await _put_message(self.clients[name], body, delay)
        self._heat(name, delay)
        if not delay:
            self.changed.set()

    def _heat(self, name: str, delay: float) -> None:
        """A message will be visible in `name` after `delay` seconds: poll it from then on."""
        self._sends[name] += 1
        self._hot_at[name] = min(self._hot_at[name], time.monotonic() + delay)

    # --------------------------------------------------------------- receive
    async def dequeue(self, queue: Queue, max_count: int, visibility_seconds: float = 300.0) -> list[Message]:
        """Up to `max_count` messages.

        Every receive is a round trip even when the queue is empty, and the dispatcher polls
        often, so queues are polled only while they may hold something: right after this
        store sent to them (or a delayed message of ours comes due), while they keep
        returning full batches, and otherwise every `idle_poll_seconds` (for messages from
        other processes and expired visibility timeouts). Control queues are received from
        in parallel, each up to its share of `max_count`; queues that filled their share
        are topped up one by one, starting from a rotating queue so none is starved."""
        if max_count <= 0:
            return []
        visibility = max(1, math.ceil(visibility_seconds))
        now = time.monotonic()
        if queue == "work":
            if self._hot_at[self.work_queue_name] > now:
                return []
            return await self._receive(self.work_queue_name, min(max_count, RECEIVE_BATCH), visibility)
        names = self.control_queue_names[self._next_control :] + self.control_queue_names[: self._next_control]
        self._next_control = (self._next_control + 1) % len(names)
        names = [n for n in names if self._hot_at[n] <= now][:max_count]
        if not names:
            return []
        share = max(1, max_count // len(names))
        batches = await asyncio.gather(*(self._receive(n, share, visibility) for n in names))
        out = [m for batch in batches for m in batch]
        for name, batch in zip(names, batches):
            want = min(max_count - len(out), RECEIVE_BATCH)
            if want <= 0:
                break
            if len(batch) >= share:  # it may hold more
                out.extend(await self._receive(name, want, visibility))
        return out

    async def _receive(self, name: str, count: int, visibility: int) -> list[Message]:
        """One receive round trip (the SDK's pager would make a second call when a page is short)."""
        sends = self._sends[name]
        pages = self.clients[name].receive_messages(messages_per_page=count, visibility_timeout=visibility).by_page()
        received: list[Any] = []
        async for page in pages:
            received = [m async for m in page]
            break
        if len(received) < count and self._sends[name] == sends:
            idle = self.leased_idle_poll_seconds if self._leased() else self.idle_poll_seconds
            self._hot_at[name] = time.monotonic() + idle  # drained: poll it lazily
        if not received:
            return []
        decoded = await asyncio.gather(*(self._decode(name, r) for r in received), return_exceptions=True)
        out: list[Message] = []
        for raw, result in zip(received, decoded):
            if isinstance(result, BaseException):
                # One unreadable message (a storage blip fetching its blob) must not keep the
                # rest of the batch hidden for the whole visibility timeout: retry it shortly.
                log.warning("devhost: reading message %s from %s failed: %s", raw.id, name, result)
                with contextlib.suppress(Exception):
                    await self.clients[name].update_message(raw.id, raw.pop_receipt, visibility_timeout=2)
                    self._heat(name, 2)
            elif result is not None:
                out.append(result)
        return out

    async def _decode(self, queue_name: str, raw: Any) -> Message | None:
        try:
            data = json.loads(raw.content)
            if isinstance(data, dict) and is_dtfx_envelope(data):
                await self._refuse(queue_name, raw)
                return None
            if not isinstance(data, dict) or not ("CompressedBlobName" in data or "event" in data):
                raise ValueError("not a devhost message")
        except (ValueError, TypeError) as exc:
            # Not ours (another tool wrote to the hub's queues): it can never be processed, and
            # left in place it would come back forever.
            log.error(
                "devhost: deleting unreadable message %s from %s (%s): %.200r", raw.id, queue_name, exc, raw.content
            )
            with contextlib.suppress(ResourceNotFoundError):
                await self.clients[queue_name].delete_message(raw.id, raw.pop_receipt)
            return None
        blob = data.get("CompressedBlobName")
        if blob:
            try:
                data = json.loads(await self._blobs.get(blob))
            except ResourceNotFoundError:
                # Blobs go when the message carrying them is acked: this is a second copy of a
                # message already processed (a send repeated after a crash).
                log.warning("devhost: dropping duplicate of processed message %s (%s)", data.get("id"), blob)
                with contextlib.suppress(ResourceNotFoundError):
                    await self.clients[queue_name].delete_message(raw.id, raw.pop_receipt)
                return None
            if not isinstance(data, dict) or is_dtfx_envelope(data):
                await self._refuse(queue_name, raw)
                return None
            self._message_blobs[raw.id] = blob
        visible_at = parse_ts(data["visible_at"]) if data.get("visible_at") else None
        if visible_at is not None:
            remaining = (visible_at - self.clock.now()).total_seconds()
            if remaining > 0.001:  # never early: hide it again until due (long timers)
                hide = min(math.ceil(remaining), MAX_DELAY_SECONDS)
                await self.clients[queue_name].update_message(raw.id, raw.pop_receipt, visibility_timeout=hide)
                self._heat(queue_name, hide)
                self._message_blobs.pop(raw.id, None)
                return None
        return Message(
            instance_id=data["instance_id"],
            event=data["event"],
            queue=data.get("queue", "control"),
            execution_id=data.get("execution_id"),
            visible_at=visible_at,
            sender=data.get("sender"),
            id=data["id"],
            dequeue_count=int(raw.dequeue_count or 1),
            receipt=Receipt(queue_name, raw.id, raw.pop_receipt),
        )

    async def _refuse(self, queue_name: str, raw: Any) -> None:
        """A message from a real Durable Functions host on this hub: one clear line, then leave it be."""
        if not self._foreign_seen:
            self._foreign_seen = True
            log.error(
                "devhost: task hub '%s' holds messages written by the Azure Functions host (DurableTask "
                "MessageData in %s); devhost keeps its own format and cannot share a hub with it: stop "
                "that host or give devhost another hub name (host.json extensions.durableTask.hubName)",
                self.layout.hub,
                queue_name,
            )
        else:
            log.debug("devhost: leaving Azure Functions host message %s in %s alone", raw.id, queue_name)
        with contextlib.suppress(Exception):
            await self.clients[queue_name].update_message(
                raw.id, raw.pop_receipt, visibility_timeout=FOREIGN_HIDE_SECONDS
            )

    # ---------------------------------------------------------------- settle
    async def ack(self, messages: Sequence[Message]) -> None:
        async def one(msg: Message) -> None:
            receipt = msg.receipt
            if receipt is None:
                return
            try:
                await _delete_message(self.clients[receipt.queue], receipt.message_id, receipt.pop_receipt)
            except ResourceNotFoundError:
                pass  # already gone (visibility expired and someone else took it, or acked twice)
            except HttpResponseError as exc:
                log.warning("devhost: deleting message %s failed: %s", msg.id, exc.reason)
                return
            blob = self._message_blobs.pop(receipt.message_id, None)
            if blob:
                await self._blobs.delete([blob])

        if messages:
            await asyncio.gather(*(one(m) for m in messages))

    async def abandon(self, messages: Sequence[Message], delay_seconds: float = 0.0) -> None:
        delay = min(max(0, math.ceil(delay_seconds)), MAX_DELAY_SECONDS)

        async def one(msg: Message) -> None:
            receipt = msg.receipt
            if receipt is None:
                return
            self._message_blobs.pop(receipt.message_id, None)
            try:
                await self.clients[receipt.queue].update_message(
                    receipt.message_id, receipt.pop_receipt, visibility_timeout=delay
                )
                self._heat(receipt.queue, delay)
            except (ResourceNotFoundError, HttpResponseError, ServiceRequestError) as exc:
                # It becomes visible again anyway when its visibility timeout ends.
                log.debug("devhost: abandoning message %s failed: %s", msg.id, exc)

        if messages:
            await asyncio.gather(*(one(m) for m in messages))

    async def poison(self, messages: Sequence[Message]) -> None:
        """Copy messages to the poison queue, then delete them from their own queue."""
        if not messages:
            return
        now = self.clock.now()
        await asyncio.gather(*(self._send(m, now, poison=True) for m in messages))
        await self.ack(messages)

    async def depth(self, queue: Queue) -> int:
        """Approximate number of messages (visible or not) in the queue(s)."""
        names = [self.work_queue_name] if queue == "work" else self.control_queue_names
        props = await asyncio.gather(*(self.clients[n].get_queue_properties() for n in names))
        return sum(int(p.approximate_message_count or 0) for p in props)


# ------------------------------------------------------------ requests
def _messages_url(client: QueueClient, path: str, query: str) -> str:
    """`{queue}/messages{path}?{query}`, keeping a SAS the client's address carries."""
    base, _, sas = client.url.partition("?")
    return f"{base}/messages{path}?{query}" + (f"&{sas}" if sas else "")


async def _put_message(client: QueueClient, text: str, delay: int) -> None:
    """Put Message, the request `QueueClient.send_message(text, visibility_timeout=delay or None,
    time_to_live=-1)` sends (no encoding policy: the text XML-escaped), through `lean`, without the
    SDK's model serialisation and response parsing (~0.6 ms of client CPU per message)."""
    query = f"visibilitytimeout={delay}&messagettl=-1" if delay else "messagettl=-1"
    body = (
        "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
        + xml_escape(text)
        + "</MessageText></QueueMessage>"
    )
    request = HttpRequest(
        "POST",
        _messages_url(client, "", query),
        content=body.encode("utf-8"),
        headers={"x-ms-version": client.api_version, "Content-Type": "application/xml", "Accept": "application/xml"},
    )
    response, answer = await lean.send(client, request)
    if response.status_code != 201:
        raise lean.storage_error(response, answer)


async def _delete_message(client: QueueClient, message_id: str, pop_receipt: str) -> None:
    """Delete Message, the request `QueueClient.delete_message` sends, through `lean`."""
    request = HttpRequest(
        "DELETE",
        _messages_url(client, "/" + quote(message_id, safe=""), "popreceipt=" + quote(pop_receipt, safe="")),
        headers={"x-ms-version": client.api_version},
    )
    response, answer = await lean.send(client, request)
    if response.status_code != 204:
        raise lean.storage_error(response, answer)
