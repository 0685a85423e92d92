"""Scale: 10,000 instances in an Azure Storage hub (Azurite); the list routes page through them bounded and fast.

The dashboard never asks for more than one page at a time (continuation tokens), so what matters is that a
page comes back with at most `top` rows, quickly, and that following tokens walks the hub without repeats.
The hub's rows (sentinels and Instances rows, from the store's own row codec) are loaded into a private
Azurite before it starts (../azurite_preload.py): inserting 10,000 one-row partitions over HTTP costs
Azurite minutes.

Tests internals (not devhost's public API): imports `devhost.index`, `devhost.server.app`,
`devhost.store.azure`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from devhost.index import AppIndex
from devhost.server.app import DevHost

from ..apps import fork_app
from ..azurite_preload import start_azurite_with_tables
from ..server.support import serving
from .synthetic import hub_tables, many_instances

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one host (and loop) for the module's tests
COUNT = 10_000
PAGE = 50


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A hub holding COUNT instances in an Azurite of this module's own; yields (connection string, hub name)."""
    name = f"Scale{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    tables = hub_tables(name, many_instances(COUNT, "scale-", now - timedelta(hours=1)), now)
    started = time.monotonic()
    azurite = start_azurite_with_tables(tmp_path_factory.mktemp("scale-azurite"), tables)
    print(f"Azurite up with {COUNT} instances in {time.monotonic() - started:.1f}s")
    try:
        yield azurite.connection_string, name
    finally:
        azurite.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base(hub: tuple[str, str]) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    from devhost.store.azure import open_store

    conn, name = hub
    store = await open_store({"AzureWebJobsStorage": conn}, name)
    host = DevHost(AppIndex.from_app(fork_app.app), store, hub=name, enable_timers=False)
    try:
        async with serving(host) as running:
            yield running
    finally:
        await store.close()


async def _page(session: aiohttp.ClientSession, url: str, token: str | None) -> tuple[list[dict], str | None]:
    """One page; page latency is a benchmark's business, not this test's (no timing assertions here)."""
    headers = {"x-ms-continuation-token": token} if token else {}
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return body, resp.headers.get("x-ms-continuation-token")


@pytest.mark.parametrize("route", ["/runtime/webhooks/durabletask/instances", "/devhost/api/instances"])
async def test_pages_are_bounded(base, route: str) -> None:
    session, root = base
    seen: set[str] = set()
    token = None
    for _ in range(5):
        rows, token = await _page(session, f"{root}{route}?top={PAGE}", token)
        assert len(rows) <= PAGE
        ids = {r["instanceId"] for r in rows}
        assert not ids & seen
        seen |= ids
        assert token, "10,000 instances cannot fit in a few pages"
    assert len(seen) == 5 * PAGE


async def test_filters_are_applied_by_the_store(base) -> None:
    session, root = base
    rows, _ = await _page(session, f"{root}/devhost/api/instances?top={PAGE}&instanceIdPrefix=scale-0999", None)
    assert sorted(r["instanceId"] for r in rows) == [f"scale-0999{i}" for i in range(10)]
    rows, _ = await _page(
        session, f"{root}/devhost/api/instances?top={PAGE}&runtimeStatus=Failed&instanceIdPrefix=scale-000", None
    )
    assert rows and all(r["runtimeStatus"] == "Failed" for r in rows)
    rows, token = await _page(session, f"{root}/devhost/api/instances?top={PAGE}&name=scale_odd", None)
    assert len(rows) <= PAGE and all(r["name"] == "scale_odd" for r in rows)
    assert token
