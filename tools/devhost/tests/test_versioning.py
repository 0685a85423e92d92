"""Orchestration versioning as the Durable extension does it (issue 11 item 2).

The behaviour pinned here, and where Azure's comes from:
* the version a new instance gets: `?version=` on the HTTP start, else host.json defaultVersion
  (extension HttpApiHandler.cs, HandleStartOrchestratorRequestAsync:
  `var version = queryNameValuePairs[VersionParameter] ?? this.config.Options.DefaultVersion;`);
* host.json settings and their defaults (extension DurableTaskOptions.cs: `DefaultVersion`,
  `VersionMatchStrategy ... = CurrentOrOlder`, `VersionFailureStrategy ... = Reject`), handed to DTFx as
  `VersioningSettings` (DurableTaskExtension.cs InitializeTaskHubWorker);
* the match check before each work item (DTFx TaskOrchestrationDispatcher.cs 400-433): Strict compares for
  equality, CurrentOrOlder with `CompareVersions` (VersioningSettings.cs 89-117); Reject abandons the work
  item, Fail completes the orchestration as Failed "Orchestration version did not comply with Worker
  Versioning";
* sub-orchestrations carry the version their action names (TaskOrchestrationDispatcher.cs 1279, 1307),
  else the defaultVersion (SDK 1.7.0 `call_sub_orchestrator` docstring; samples-v2/orchestration_versioning
  README); the child's ParentInstance carries the parent's version (1303); continue-as-new keeps the
  version (1075);
* the HTTP status payload has no version field (HttpApiHandler.cs `ConvertFrom` builds name, instanceId,
  runtimeStatus, input, customStatus, output, createdTime, lastUpdatedTime, historyEvents).

The acceptance case is the contract of Microsoft's samples-v2/orchestration_versioning, run over HTTP through
the SDK's own client: tests/apps/versioned/function_app.py has its shape and the outputs its README states.

Tests internals too (not devhost's public API): `devhost.versioning`, `devhost.server.*`, `devhost.index`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from devhost import DurableHarness, EventType, RuntimeStatus, Versioning
from devhost.index import AppIndex
from devhost.server.app import DevHost
from devhost.server.settings import HostConfig, SettingsError
from devhost.store.memory import MemoryStore
from devhost.versioning import FailureStrategy, MatchStrategy, compare_versions
from tests import import_file

from .server.support import serving

APP_ROOT = Path(__file__).parent / "apps" / "versioned"
WEBHOOK = "/runtime/webhooks/durabletask"


def versioned_module() -> ModuleType:
    return import_file(APP_ROOT / "function_app.py", "devhost_tests_versioned_app", once=True)


# ------------------------------------------------------------------- the comparison
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0.0", "1.0.0", 0),  # the DTFx docs' own examples (docs/features/versioning.md 268-271)
        ("2.0.0", "1.0.0", 1),
        ("1.0.0", "2.0.0", -1),
        ("", "1.0.0", -1),  # empty is older than any defined version
        ("1.0", "", 1),
        (None, "  ", 0),  # blank and missing are the same
        ("1.10", "1.9", 1),  # System.Version: numeric, not text
        ("1.0", "1.0.0", -1),  # System.Version: a missing build counts as -1
        ("10", "9", -1),  # one part is not a System.Version: compared as text
        ("V1.0-release", "v1.0-RELEASE", 0),  # text comparison ignores case
        ("2025-01-01", "2024-12-31", 1),
    ],
)
def test_compare_versions_as_dtfx(a: str | None, b: str | None, expected: int) -> None:
    assert compare_versions(a, b) == expected


def test_match_strategies() -> None:
    current_or_older = Versioning("2.0")  # the extension's defaults: CurrentOrOlder, Reject
    assert current_or_older.mismatch("1.0") is None and current_or_older.mismatch("2.0") is None
    assert current_or_older.mismatch("") is None  # unversioned instances are older than any version
    assert current_or_older.mismatch("2.1") == FailureStrategy.REJECT
    strict = Versioning("2.0", MatchStrategy.STRICT, FailureStrategy.FAIL)
    assert strict.mismatch("2.0") is None
    assert strict.mismatch("1.0") == FailureStrategy.FAIL
    assert Versioning(None, MatchStrategy.STRICT).mismatch("") is None  # null == null in C#
    assert Versioning("1.0", MatchStrategy.NONE).mismatch("9.0") is None
    assert Versioning().mismatch("1.0") == FailureStrategy.REJECT  # no defaultVersion: any version is newer


def test_host_json_settings(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "durableTask": {
                        "defaultVersion": "1.5",
                        "versionMatchStrategy": "strict",
                        "versionFailureStrategy": "Fail",
                    }
                },
            }
        )
    )
    assert HostConfig.load(tmp_path, {}).versioning == Versioning("1.5", MatchStrategy.STRICT, FailureStrategy.FAIL)
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))
    assert HostConfig.load(tmp_path, {}).versioning == Versioning(
        None, MatchStrategy.CURRENT_OR_OLDER, FailureStrategy.REJECT
    )
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"versionMatchStrategy": "Newest"}}})
    )
    with pytest.raises(SettingsError) as err:
        HostConfig.load(tmp_path, {})
    assert str(err.value) == (
        "host.json: extensions.durableTask.versionMatchStrategy must be one of None, Strict, "
        "CurrentOrOlder, not 'Newest'"
    )


# ---------------------------------------------------------------------- the harness
def test_versions_of_new_instances_children_retries_and_continue_as_new() -> None:
    app = versioned_module().app
    with DurableHarness(app, versioning=Versioning("1.0")) as durable:
        plain = durable.start("renewing")
        explicit = durable.start("renewing", instance_id="explicit", version="0.5")
        assert durable.run(plain).output == "1.0 in round 2"  # continue-as-new kept the version
        assert durable.run(explicit).output == "0.5 in round 2"
        assert durable.status(plain).version == "1.0"

        parent = durable.start("retrying_parent", "retry-key")
        done = durable.run(parent)
        assert done.runtime_status == RuntimeStatus.COMPLETED, done.output
        assert done.output == "0.8 after 3 attempts"  # each retry's child got the version the action named
        created = [ev for ev in done.history if ev["EventType"] == EventType.SUB_ORCHESTRATION_CREATED]
        assert [ev["Version"] for ev in created] == ["0.8", "0.8", "0.8"]
        child = durable.status(created[0]["InstanceId"])
        started = next(ev for ev in child.history if ev["EventType"] == EventType.EXECUTION_STARTED)
        assert started["ParentInstance"]["Version"] == "1.0"  # the parent's version


def test_unversioned_instances_read_none() -> None:
    """No defaultVersion, no ?version=: ExecutionStartedEvent.Version stays null, and the extension hands the
    history to the worker with nulls kept (OrchestrationTriggerAttributeBindingProvider.cs 225,
    `JArray.FromObject(arg.History, serializer)` with the default serializer), so `context.version` is None."""
    with DurableHarness(versioned_module().app) as durable:
        iid = durable.start("renewing")
        assert durable.run(iid).output == "None in round 2"
        assert durable.status(iid).version is None


def test_fail_strategy_fails_a_newer_instance() -> None:
    app = versioned_module().app
    strict = Versioning("1.0", MatchStrategy.STRICT, FailureStrategy.FAIL)
    with DurableHarness(app, versioning=strict) as durable:
        iid = durable.start("renewing", version="0.9")
        status = durable.run(iid)
    assert status.runtime_status == RuntimeStatus.FAILED
    # TaskOrchestrationDispatcher.cs 418-426 (DTFx main): FailureDetails("VersionMismatch", ...), no Result; the
    # Instances row's Output is FailureDetails.ToString() (AzureTableTrackingStore.cs 1010-1015).
    assert status.output == "VersionMismatch: Orchestration version did not comply with Worker Versioning"
    (completed,) = [ev for ev in status.history if ev["EventType"] == EventType.EXECUTION_COMPLETED]
    assert completed["Result"] is None
    assert completed["FailureDetails"]["ErrorType"] == "VersionMismatch"


def test_reject_strategy_leaves_a_newer_instance_waiting(caplog: pytest.LogCaptureFixture) -> None:
    # TaskOrchestrationDispatcher.cs 428-431 (DTFx main) abandons the work item; Azure Storage hides its
    # messages for 2^DequeueCount s, at most 600 (TaskHubQueue.cs 244-249). devhost logs the reason once.
    app = versioned_module().app
    with (
        caplog.at_level(logging.WARNING, logger="devhost"),
        DurableHarness(app, versioning=Versioning("1.0")) as durable,
    ):
        iid = durable.start("renewing", version="2.0")
        status = durable.run(iid, timeout=timedelta(minutes=5))
        again = durable.run(iid)  # without a timeout too: it returns rather than advancing time for ever
    assert status is not None and status.runtime_status == RuntimeStatus.PENDING
    assert again.runtime_status == RuntimeStatus.PENDING
    lines = [r.getMessage() for r in caplog.records if "versionFailureStrategy Reject" in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"({iid}) has version '2.0'" in lines[0] and "defaultVersion '1.0'" in lines[0]


# ---------------------------------------------------- the sample's contract over HTTP
@asynccontextmanager
async def host_on(store: MemoryStore, versioning: Versioning) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    host = DevHost(
        AppIndex.from_app(versioned_module().app), store, hub="TestHubName", enable_timers=False, versioning=versioning
    )
    async with serving(host) as running:
        yield running


async def start(session: aiohttp.ClientSession, base: str, query: str = "") -> str:
    """Start my_orchestrator through the app's own HTTP starter (the SDK client's start_new)."""
    async with session.post(f"{base}/api/orchestrators/my_orchestrator{query}") as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["id"])


async def status_of(session: aiohttp.ClientSession, base: str, iid: str) -> dict[str, Any]:
    async with session.get(f"{base}{WEBHOOK}/instances/{iid}") as resp:
        return dict(await resp.json())


async def wait_for(session: aiohttp.ClientSession, base: str, iid: str, field: str, value: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        body = await status_of(session, base, iid)
        if body.get(field) == value:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.02)


async def continue_(session: aiohttp.ClientSession, base: str, iid: str) -> dict[str, Any]:
    async with session.post(f"{base}{WEBHOOK}/instances/{iid}/raiseEvent/Continue", json="go") as resp:
        assert resp.status == 202, await resp.text()
    return await wait_for(session, base, iid, "runtimeStatus", "Completed")


async def test_orchestration_versioning_sample_outputs() -> None:
    versioning = HostConfig.load(APP_ROOT, {}).versioning  # the app's host.json: defaultVersion 1.0
    assert versioning.default_version == "1.0"
    store = MemoryStore()
    async with host_on(store, versioning) as (session, base):
        # While defaultVersion is 1.0, every new instance takes the old path.
        first = await start(session, base)
        await wait_for(session, base, first, "customStatus", "Waiting for Continue event...")
        done = await continue_(session, base, first)
        assert done["output"] == [
            "Orchestration version: 1.0",
            "Suborchestration version (explicit): 0.9",
            "Suborchestration version (default): 1.0",
            "Hello from A!",
        ]
        assert "version" not in done  # Azure's status payload has no version field
        async with session.get(f"{base}/devhost/api/instances/{first}/history") as resp:
            assert (await resp.json())["version"] == "1.0"  # what the dashboard's instance page shows

        # Started before a deploy that moves defaultVersion to 2.0, resumed after it.
        in_flight = await start(session, base)
        await wait_for(session, base, in_flight, "customStatus", "Waiting for Continue event...")
        # ?version=2.0 on this 1.0 host: newer than the host, so it waits (CurrentOrOlder + Reject) ...
        newer = await start(session, base, "?version=2.0")
        probe = await start(session, base)  # ... while the host keeps working on other instances
        await wait_for(session, base, probe, "customStatus", "Waiting for Continue event...")
        assert (await status_of(session, base, newer))["runtimeStatus"] == "Pending"

    async with host_on(store, Versioning("2.0")) as (session, base):
        done = await continue_(session, base, in_flight)
        assert done["output"] == [
            "Orchestration version: 1.0",
            "Suborchestration version (explicit): 0.9",
            "Suborchestration version (default): 2.0",
            "Hello from A!",
        ]
        # ... and a 2.0 host runs it, on the new path.
        await wait_for(session, base, newer, "customStatus", "Waiting for Continue event...")
        done = await continue_(session, base, newer)
        assert done["output"] == [
            "Orchestration version: 2.0",
            "Suborchestration version (explicit): 0.9",
            "Suborchestration version (default): 2.0",
            "Hello from B!",
        ]


def test_replaying_http_histories_of_versioned_instances_needs_the_version() -> None:
    """The HTTP view drops ExecutionStarted's Version (history_view.to_http_history, as the extension does), so
    `devhost replay --url/--version` and `replay_history(..., version=)` say which version to replay under."""
    from devhost import replay_history
    from devhost.history_view import to_http_history

    app = versioned_module().app
    with DurableHarness(app, versioning=Versioning("1.0")) as durable:
        iid = durable.start("my_orchestrator")
        status = durable.run(iid)  # waits for "Continue" after activity_a
        payload = {
            "instanceId": iid,
            "historyEvents": to_http_history(status.history, show_input=True, show_output=True),
        }
    assert replay_history(app, payload, version="1.0").ok
    unversioned = replay_history(app, payload)
    assert not unversioned.ok and "'activity_a'" in str(unversioned.divergence)
