"""Storage-queue triggers on real queues (Azurite or an account), polled like the Functions host.

Per message: decode (host.json `extensions.queues.messageEncoding`, base64 by default,
as the host expects), call the function with a `func.QueueMessage`, delete it on
success; on failure make it visible again after `visibilityTimeout`, and once it has
been tried `maxDequeueCount` times move it to `<queue>-poison`. Empty queues are polled
with a growing interval up to `maxPollingInterval` (2 s by default here, rather than the
host's 1 minute, since this is for development).

Only used with the Azure Storage task hub: with `DEVHOST_STORE=memory` devhost touches no
storage at all, and queue functions are invoked through `/admin/functions/{name}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .triggers import Invoke, TriggerLoops

log = logging.getLogger("devhost")


@dataclass
class QueueOptions:
    """host.json `extensions.queues` (the values devhost honours)."""

    message_encoding: str = "base64"
    max_dequeue_count: int = 5
    batch_size: int = 16
    visibility_timeout: float = 0.0
    max_polling_interval: float = 2.0


@dataclass
class QueueJob:
    """One queue-triggered function: which queue, through which connection setting."""

    function: str
    queue: str
    connection: str
    clients: dict[str, Any] = field(default_factory=dict)


def parse_timespan(value: Any, what: str) -> float:
    """host.json durations: `hh:mm:ss[.fff]` or a number of milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 3:
            try:
                return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
            except ValueError:
                pass
    raise ValueError(f"host.json: {what} must be a TimeSpan like '00:00:02' or milliseconds, not {value!r}")


def connection_string(settings: Mapping[str, str], name: str) -> str | None:
    """The connection string a binding's `connection` names (`UseDevelopmentStorage=true` = Azurite)."""
    text = settings.get(name) or settings.get(f"AzureWebJobs{name}")
    if not text:
        return None
    if text.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
        from ..store.azure import DEVELOPMENT_CONNECTION_STRING

        return str(DEVELOPMENT_CONNECTION_STRING)
    return text


def decode_body(content: Any, encoding: str) -> bytes:
    raw = content if isinstance(content, bytes) else str(content or "").encode()
    if encoding.lower() != "base64":
        return raw
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the message is not valid base64 (host.json extensions.queues.messageEncoding is "
            "'base64', the host's default)"
        ) from None


class QueuePoller(TriggerLoops[QueueJob]):
    """Polls each queue-triggered function's queue until stopped."""

    def __init__(
        self,
        jobs: list[QueueJob],
        invoke: Invoke,
        settings: Mapping[str, str],
        options: QueueOptions | None = None,
        min_interval: float = 0.1,
    ) -> None:
        super().__init__(jobs)
        self.invoke = invoke
        self.settings = settings
        self.options = options or QueueOptions()
        self.min_interval = min_interval
        self._clients: list[Any] = []

    async def stop(self) -> None:
        await super().stop()
        for client in self._clients:
            try:
                await client.close()
            except Exception:  # closing is best effort at shutdown
                pass
        self._clients.clear()

    def _client(self, job: QueueJob, queue: str) -> Any:
        from azure.storage.queue.aio import QueueClient

        if queue not in job.clients:
            conn = connection_string(self.settings, job.connection)
            assert conn is not None
            job.clients[queue] = QueueClient.from_connection_string(conn, queue)
            self._clients.append(job.clients[queue])
        return job.clients[queue]

    async def _run(self, job: QueueJob) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        client = self._client(job, job.queue)
        interval = self.min_interval
        warned = False
        while True:
            try:
                messages = [
                    m
                    async for m in client.receive_messages(max_messages=self.options.batch_size, visibility_timeout=300)
                ]
                warned = False
            except ResourceNotFoundError:
                messages = []  # the queue does not exist yet: like the host, just keep polling
            except Exception as exc:
                if not warned:
                    log.warning(
                        "devhost: queue trigger '%s': cannot read queue '%s': %s",
                        job.function,
                        job.queue,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                    warned = True
                messages = []
            if messages:
                interval = self.min_interval
                await asyncio.gather(*(self._handle(job, client, m) for m in messages))
                continue
            await asyncio.sleep(interval)
            interval = min(interval * 2, self.options.max_polling_interval)

    async def _handle(self, job: QueueJob, client: Any, msg: Any) -> None:
        from azure.functions.queue import QueueMessage

        now = datetime.now(UTC)
        try:
            body = decode_body(msg.content, self.options.message_encoding)
            value = QueueMessage(
                id=msg.id,
                body=body,
                dequeue_count=msg.dequeue_count,
                insertion_time=msg.inserted_on,
                expiration_time=msg.expires_on,
                time_next_visible=msg.next_visible_on or now + timedelta(minutes=5),
                pop_receipt=msg.pop_receipt,
            )
            await self.invoke(job.function, value)
        except Exception as exc:
            if isinstance(exc, ValueError) and "base64" in str(exc):
                log.error("devhost: queue trigger '%s': %s", job.function, exc)
            await self._failed(job, client, msg)
            return
        try:
            await client.delete_message(msg)
        except Exception as exc:
            log.warning("devhost: queue trigger '%s': deleting message %s failed: %s", job.function, msg.id, exc)

    async def _failed(self, job: QueueJob, client: Any, msg: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if (msg.dequeue_count or 0) >= self.options.max_dequeue_count:
                poison_name = f"{job.queue}-poison"
                poison = self._client(job, poison_name)
                try:
                    await poison.create_queue()
                except ResourceExistsError:
                    pass
                await poison.send_message(msg.content)
                await client.delete_message(msg)
                log.error(
                    "devhost: queue trigger '%s': message %s failed %d times; moved to queue '%s'",
                    job.function,
                    msg.id,
                    msg.dequeue_count,
                    poison_name,
                )
            else:
                await client.update_message(msg, visibility_timeout=int(self.options.visibility_timeout))
        except Exception as exc:
            log.warning("devhost: queue trigger '%s': handling failed message %s: %s", job.function, msg.id, exc)
