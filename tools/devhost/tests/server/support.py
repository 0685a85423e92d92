"""Shared helpers: load the sample app once, run a DevHost on a free loopback port.

Tests internals (not devhost's public API): imports `devhost.index`, `devhost.server.app`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp

from devhost.index import AppIndex
from devhost.server.app import DevHost
from devhost.store.memory import MemoryStore
from tests import import_file

SAMPLE_ROOT = Path(__file__).parents[1] / "apps" / "sample_app"
HUB = "SampleHub"
SETTINGS = {"TICK_SCHEDULE": "0 0 0 1 1 *", "HUB_NAME": HUB}
WEBHOOK = "/runtime/webhooks/durabletask"
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


def sample_module() -> ModuleType:
    """The sample function_app, imported once under a private name (get_functions runs once per app)."""
    return import_file(SAMPLE_ROOT / "function_app.py", "devhost_server_sample_function_app", once=True)


def sample_index() -> AppIndex:
    return AppIndex.from_app(sample_module().app)


@asynccontextmanager
async def serving(host: DevHost) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """`host` started on 127.0.0.1:<free port>, a client session and its base URL; stopped afterwards."""
    port = await host.start(0)
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{port}"
    finally:
        await host.stop()


@asynccontextmanager
async def running_host(**kwargs: Any) -> AsyncIterator[tuple[DevHost, aiohttp.ClientSession, str]]:
    """A started DevHost on 127.0.0.1:<free port> with a memory store, plus a client session and base URL."""
    options: dict[str, Any] = {"hub": HUB, "settings": dict(SETTINGS), "enable_timers": False}
    options.update(kwargs)
    host = DevHost(sample_index(), MemoryStore(), **options)
    async with serving(host) as (session, base):
        yield host, session, base


async def wait_status(
    session: aiohttp.ClientSession, url: str, statuses: set[str] | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll a statusQueryGetUri until the runtimeStatus is in `statuses` (default: terminal)."""
    wanted = statuses or TERMINAL
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with session.get(url) as resp:
            body = await resp.json()
        if body.get("runtimeStatus") in wanted:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"instance did not reach {wanted}: {body}")
        await asyncio.sleep(0.02)


async def sdk(session: aiohttp.ClientSession, base: str, op: str, **args: Any) -> Any:
    """Run one SDK client call inside the sample app's `sdk` HTTP function and return its JSON result."""
    async with session.post(f"{base}/api/sdk/{op}", json=args) as resp:
        text = await resp.text()
        assert resp.status == 200, (op, resp.status, text)
        return await resp.json()
