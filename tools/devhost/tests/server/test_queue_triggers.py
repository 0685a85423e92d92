"""Queue triggers on real storage queues (a private Azurite): decode, invoke, delete, poison.

Tests internals (not devhost's public API): imports `devhost.server.queues`.
"""

from __future__ import annotations

import asyncio
import base64

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

from devhost.server.queues import QueueOptions

from .support import running_host, sample_module


async def _fresh_queue(conn: str, name: str) -> QueueClient:
    client = QueueClient.from_connection_string(conn, name)
    try:
        await client.create_queue()
    except ResourceExistsError:
        await client.clear_messages()
    return client


async def _until(predicate, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_queue_messages_are_delivered_and_failures_poisoned(azurite_connection_string: str) -> None:
    conn = azurite_connection_string
    calls = sample_module().CALLS
    work = await _fresh_queue(conn, "work-items")
    failing = await _fresh_queue(conn, "always-fails")
    poison = await _fresh_queue(conn, "always-fails-poison")
    options = QueueOptions(max_dequeue_count=2, max_polling_interval=0.2)
    settings = {"AzureWebJobsStorage": conn, "TICK_SCHEDULE": "0 0 0 1 1 *"}
    try:
        async with running_host(queue_triggers=True, queue_options=options, settings=settings) as (host, _, _):
            assert sorted(j.queue for j in host.queue_jobs) == ["always-fails", "work-items"]
            await work.send_message(base64.b64encode(b"from-queue").decode())
            await failing.send_message(base64.b64encode(b"doomed").decode())

            async def delivered() -> bool:
                return ("queue_item", "from-queue") in calls

            await _until(delivered)

            async def poisoned() -> bool:
                return len(await poison.peek_messages(max_messages=5)) == 1

            await _until(poisoned)
            assert ("queue_fails", 1) in calls and ("queue_fails", 2) in calls
            (moved,) = await poison.peek_messages(max_messages=5)
            assert base64.b64decode(moved.content) == b"doomed"
            await asyncio.sleep(0.3)
            assert await work.peek_messages() == []  # deleted after success
            assert await failing.peek_messages() == []
    finally:
        for client in (work, failing, poison):
            await client.close()
