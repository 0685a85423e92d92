"""Fork (devhost-only): a new instance from a prefix of another's history, carried on by the current code.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.index`, `devhost.server.app`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from devhost.history import EventType
from devhost.index import AppIndex
from devhost.server.app import DevHost
from devhost.store.memory import MemoryStore

from ..apps import fork_app
from ..server.support import serving

WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture
async def host() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    devhost = DevHost(AppIndex.from_app(fork_app.app), MemoryStore(), hub="ForkHub", enable_timers=False)
    async with serving(devhost) as running:
        yield running


async def _status(session: aiohttp.ClientSession, base: str, iid: str, wanted: set[str]) -> dict:
    for _ in range(500):
        async with session.get(f"{base}{WEBHOOK}/instances/{iid}") as resp:
            body = await resp.json()
        if body["runtimeStatus"] in wanted:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"{iid} never reached {wanted}: {body}")


async def _failed_run(session: aiohttp.ClientSession, base: str) -> tuple[str, list[dict]]:
    fork_app.BROKEN["second"] = True
    async with session.post(f"{base}{WEBHOOK}/orchestrators/two_steps/orig-1") as resp:
        assert resp.status == 202
    body = await _status(session, base, "orig-1", {"Running"})
    while body.get("customStatus") is None:
        body = await _status(session, base, "orig-1", {"Running"})
    async with session.post(f"{base}{WEBHOOK}/instances/orig-1/raiseEvent/Go", json="go") as resp:
        assert resp.status == 202
    await _status(session, base, "orig-1", {"Failed"})
    async with session.get(f"{base}/devhost/api/instances/orig-1/history") as resp:
        export = await resp.json()
    return "orig-1", export["history"]


async def test_fork_a_failed_run_before_the_failure_completes_with_fixed_code(host) -> None:
    session, base = host
    iid, history = await _failed_run(session, base)
    failed_at = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.TASK_FAILED)
    fork_app.BROKEN["second"] = False  # "fix" the activity
    try:
        async with session.post(
            f"{base}/devhost/api/instances/{iid}/fork", json={"atEvent": failed_at, "newInstanceId": "forked-1"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            result = await resp.json()
        assert result["instanceId"] == "forked-1"
        assert result["pendingSent"] == 1  # step two, scheduled and never answered at the cut
        done = await _status(session, base, "forked-1", {"Completed", "Failed"})
        assert done["runtimeStatus"] == "Completed", done
        assert done["output"] == ["did one", "go", "did two"]
        async with session.get(f"{base}/devhost/api/instances/forked-1/history") as resp:
            forked = (await resp.json())["history"]
        kept = history[: result["cutAt"]]
        assert [ev["EventType"] for ev in forked[: len(kept)]] == [ev["EventType"] for ev in kept]
        # the first activity ran once, in the original: the fork did not re-run it
        assert sum(1 for ev in forked if ev["EventType"] == EventType.TASK_SCHEDULED) == 2
    finally:
        fork_app.BROKEN["second"] = True


async def test_fork_in_the_first_episode_is_a_restart_and_bad_requests_are_4xx(host) -> None:
    session, base = host
    iid, history = await _failed_run(session, base)
    async with session.post(f"{base}/devhost/api/instances/{iid}/fork", json={"atEvent": 1}) as resp:
        assert resp.status == 201
        new_id = (await resp.json())["instanceId"]
    body = await _status(session, base, new_id, {"Running"})
    assert body["name"] == "two_steps"
    for payload, status in (
        ({"atEvent": 10_000}, 400),
        ({"atEvent": "x"}, 400),
        ({"atEvent": 1, "newInstanceId": iid}, 409),
    ):
        async with session.post(f"{base}/devhost/api/instances/{iid}/fork", json=payload) as resp:
            assert resp.status == status, (payload, await resp.text())
            assert "Message" in await resp.json()
    async with session.post(f"{base}/devhost/api/instances/nope/fork", json={"atEvent": 0}) as resp:
        assert resp.status == 404


async def test_fork_waiting_for_an_event_waits_again(host) -> None:
    session, base = host
    iid, history = await _failed_run(session, base)
    raised = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.EVENT_RAISED)
    async with session.post(f"{base}/devhost/api/instances/{iid}/fork", json={"atEvent": raised}) as resp:
        assert resp.status == 201, await resp.text()
        result = await resp.json()
    assert result["pendingSent"] == 0
    body = await _status(session, base, result["instanceId"], {"Running"})
    assert body["customStatus"] == {"after": "did one"}
