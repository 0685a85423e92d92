"""Crash safety end to end: devhost as a subprocess on Azurite, killed and restarted under load.

`test_sigkill_mid_run_then_restart`: several `crash_flow` orchestrations (a fan-out of 30
activities, a 2 s durable timer, a 10-step chain) run on devhost; after N activity executions
devhost's process group gets SIGKILL; while it is down every completion already in a history
is sent again with a wrong result (what a crash between checkpoint and delete leaves behind);
a new devhost is started on the same task hub (retrying while the dead one's hub lease lasts),
and every instance must complete with its exact output and a history without duplicates
(docs/durable-protocol.md §7.7: send, then checkpoint guarded by the etag, then delete; the engine drops
repeats). The killed host's received messages come back after DEVHOST_VISIBILITY_SECONDS.

`test_azurite_restart_under_running_devhost`: Azurite (the test's own, data on disk) is stopped
while devhost works and restarted on the same ports and data; devhost must stay up, log its
retries, answer 503 (not 500, not a hang) where it needs storage, and finish every instance.

Timing only decides *when* things are killed; what is asserted never depends on it.

Tests internals (not devhost's public API): imports `devhost.azurite`, `devhost.history`, `devhost.model`,
`devhost.store.azure`, `devhost.store.base`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from devhost import DevhostExited, DevhostProcess
from devhost.azurite import Azurite, free_port, start_azurite
from devhost.history import EVENT_NAMES, EventType
from devhost.model import Message
from devhost.store.azure import open_store
from devhost.store.azure.layout import HubLayout
from devhost.store.azure.lease import LEASE_BLOB
from devhost.store.base import InstanceQuery
from tests import PROJECT_ROOT as REPO

APP_ROOT = Path(__file__).parents[1] / "apps" / "crash_app"
WEBHOOK = "/runtime/webhooks/durabletask"
INSTANCES = 6
FAN = 30
CHAIN = 10
TIMER_SECONDS = 2
TOTAL_ACTIVITIES = INSTANCES * (FAN + CHAIN)
# Received-but-unacked messages of a killed devhost come back after this long (default 300 s).
VISIBILITY_SECONDS = 4
# The hub lease a killed devhost leaves behind expires after this long (15 is the minimum; default 30).
LEASE_SECONDS = 15
COMPLETION_TIMEOUT = 120.0
_ACTIVITY_LINE = re.compile(r"Executed 'Functions\.(fan_part|chain_step)' \(Succeeded")


# ------------------------------------------------------------------ expected outputs
def spec(seed: int) -> dict[str, int]:
    return {"seed": seed, "fan": FAN, "chain": CHAIN, "timer": TIMER_SECONDS}


def expected_output(seed: int) -> dict[str, Any]:
    """What crash_app/function_app.py's crash_flow returns for `spec(seed)`."""
    parts = [seed * 1000 + i * i for i in range(FAN)]
    value = sum(parts)
    for step in range(CHAIN):
        value = (value * 31 + step + 7) % 1_000_003
    return {"seed": seed, "parts": parts, "final": value}


# ------------------------------------------------------------------ devhost process
class Devhost(DevhostProcess):
    """The crash app on `devhost start` (its own process group: `kill` is a crash), hub and timings set."""

    def __init__(self, log_dir: Path, connection: str, hub: str) -> None:
        super().__init__(APP_ROOT, log_dir)
        self.start(
            AzureWebJobsStorage=connection,
            CRASH_HUB=hub,
            DEVHOST_VISIBILITY_SECONDS=str(VISIBILITY_SECONDS),
            DEVHOST_LEASE_SECONDS=str(LEASE_SECONDS),
            args=["--verbose"],  # the engine logs each duplicate it drops
            cwd=REPO,
        )

    def activities_run(self) -> int:
        return len(_ACTIVITY_LINE.findall(self.log()))


def hub_lease_state(connection: str, hub: str) -> str:
    """The state of the hub lease blob's lease ("available", "leased", "expired", ...; "available" if none yet)."""
    with BlobServiceClient.from_connection_string(connection) as service:
        blob = service.get_blob_client(HubLayout(hub).leases_container, LEASE_BLOB)
        try:
            return str(blob.get_blob_properties().lease.state)
        except ResourceNotFoundError:
            return "available"


def start_devhost(
    log_dir: Path, connection: str, hub: str, name: str, lease_timeout: float = 70.0
) -> tuple[Devhost, float]:
    """Start devhost; if it is refused because a killed predecessor's hub lease has not expired, wait for the
    lease to lapse (polling the blob, not respawning devhost) and start it again.

    Returns the host and how long it took until one started (lease wait included). The logs of its attempts
    are in `log_dir/name/`."""
    started = time.monotonic()
    (log_dir / name).mkdir(exist_ok=True)
    while True:
        host = Devhost(log_dir / name, connection, hub)
        try:
            return host.wait_ready(), time.monotonic() - started
        except DevhostExited as exited:
            assert "in use by another devhost" in exited.log, str(exited)
        deadline = started + lease_timeout
        while hub_lease_state(connection, hub) == "leased":
            assert time.monotonic() < deadline, f"the hub lease was not freed in {lease_timeout:.0f}s"
            time.sleep(0.2)


# ------------------------------------------------------------------ HTTP
def http(method: str, url: str, body: object = None, timeout: float = 30.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def start_instances(host: Devhost, ids: list[str], first_seed: int = 1) -> None:
    for seed, iid in enumerate(ids, start=first_seed):
        code, body = http("POST", f"{host.base}{WEBHOOK}/orchestrators/crash_flow/{iid}", spec(seed))
        assert code == 202, (code, body)


def wait_until(predicate: Any, timeout: float, what: str, host: Devhost) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert host.process.poll() is None, f"devhost exited ({host.process.returncode}):\n{host.log()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{host.log()[-3000:]}"
        time.sleep(0.02)


def wait_all_completed(host: Devhost, ids: list[str], timeout: float = COMPLETION_TIMEOUT) -> dict[str, Any]:
    """Every instance's status payload once all are Completed; on timeout, fail naming the stuck ones."""
    deadline = time.monotonic() + timeout
    done: dict[str, Any] = {}
    while True:
        for iid in ids:
            if iid in done:
                continue
            try:
                code, body = http("GET", f"{host.base}{WEBHOOK}/instances/{iid}", timeout=10)
            except OSError:
                continue
            if isinstance(body, dict) and body.get("runtimeStatus") in ("Completed", "Failed", "Terminated"):
                done[iid] = body
        if len(done) == len(ids):
            return done
        if time.monotonic() > deadline or host.process.poll() is not None:
            stuck = []
            for iid in (i for i in ids if i not in done):
                try:
                    _, body = http("GET", f"{host.base}{WEBHOOK}/instances/{iid}?showHistory=true", timeout=10)
                    tail = [e.get("EventType") for e in (body or {}).get("historyEvents") or []][-5:]
                    stuck.append(f"{iid}: {(body or {}).get('runtimeStatus')} last events {tail}")
                except OSError as exc:
                    stuck.append(f"{iid}: status unavailable ({exc})")
            raise AssertionError(
                f"not completed within {timeout:.0f}s (devhost exit code {host.process.poll()}): "
                + "; ".join(stuck)
                + f"\n{host.log()[-3000:]}"
            )
        time.sleep(0.2)


# ------------------------------------------------------------------ history checks
async def _read_hub(connection: str, hub: str, ids: list[str]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Each instance's full history (exact DTFx events), and what the Instances query index says."""
    store = await open_store({"AzureWebJobsStorage": connection}, hub)
    try:
        histories = {}
        for iid in ids:
            inst = await store.load(iid)
            assert inst is not None, iid
            histories[iid] = list(inst.history)
        # The query index is written after each checkpoint; it must catch up with the last one.
        deadline = time.monotonic() + 10
        while True:
            page = await store.query(InstanceQuery(page_size=100))
            index = sorted(f"{i.instance_id}={i.runtime_status.value}" for i in page.instances)
            if index == sorted(f"{iid}=Completed" for iid in ids) or time.monotonic() > deadline:
                return histories, index
            await asyncio.sleep(0.2)
    finally:
        await store.close()


async def _redeliver_completions(connection: str, hub: str, ids: list[str]) -> int:
    """Send again every completion already in a history, with a wrong result, as a crash between
    checkpoint and delete leaves them (at-least-once delivery): the engine must drop them all.

    Only with devhost down, so the histories read here are the last checkpoint."""
    store = await open_store({"AzureWebJobsStorage": connection}, hub)
    try:
        copies: list[Message] = []
        for iid in ids:
            inst = await store.load(iid)
            if inst is None:
                continue
            for ev in inst.history:
                if ev["EventType"] in (EventType.TASK_COMPLETED, EventType.TIMER_FIRED):
                    copy = dict(ev)
                    if "Result" in copy:
                        copy["Result"] = json.dumps(-1)  # would corrupt the output if applied
                    copies.append(Message(iid, copy, execution_id=inst.execution_id))
        await store.enqueue(copies)
        return len(copies)
    finally:
        await store.close()


def check_instances(connection: str, hub: str, ids: list[str], statuses: dict[str, Any]) -> None:
    """Exact outputs, and each full (DTFx-shaped) history free of duplicates."""
    problems: list[str] = []
    for seed, iid in enumerate(ids, start=1):
        body = statuses[iid]
        if body.get("runtimeStatus") != "Completed" or body.get("output") != expected_output(seed):
            problems.append(f"{iid}: {body.get('runtimeStatus')} output {body.get('output')!r}")
    histories, index = asyncio.run(_read_hub(connection, hub, ids))
    if index != sorted(f"{iid}=Completed" for iid in ids):
        problems.append(f"the Instances query index disagrees: {index}")
    for iid, history in histories.items():
        types = Counter(int(e["EventType"]) for e in history)
        scheduled = [e["EventId"] for e in history if e["EventType"] == EventType.TASK_SCHEDULED]
        timers = [e["EventId"] for e in history if e["EventType"] == EventType.TIMER_CREATED]
        completed = [
            e["TaskScheduledId"] for e in history if e["EventType"] in (EventType.TASK_COMPLETED, EventType.TASK_FAILED)
        ]
        fired = [e["TimerId"] for e in history if e["EventType"] == EventType.TIMER_FIRED]
        for what, values in (
            ("TaskScheduled EventId", scheduled),
            ("TimerCreated EventId", timers),
            ("completion of TaskScheduledId", completed),
            ("TimerFired for TimerId", fired),
        ):
            dupes = sorted(v for v, n in Counter(values).items() if n > 1)
            if dupes:
                problems.append(f"{iid}: duplicate {what} {dupes}")
        if sorted(completed) != sorted(scheduled) or sorted(fired) != sorted(timers):
            problems.append(
                f"{iid}: completions {sorted(completed)} / timers fired {sorted(fired)} do not match "
                f"scheduled {sorted(scheduled)} / timers {sorted(timers)}"
            )
        expected_counts = {
            EventType.EXECUTION_STARTED: 1,
            EventType.EXECUTION_COMPLETED: 1,
            EventType.TASK_SCHEDULED: FAN + CHAIN,
            EventType.TASK_COMPLETED: FAN + CHAIN,
            EventType.TIMER_CREATED: 1,
            EventType.TIMER_FIRED: 1,
            EventType.TASK_FAILED: 0,
        }
        for event_type, count in expected_counts.items():
            if types[event_type] != count:
                problems.append(f"{iid}: {types[event_type]} {EVENT_NAMES[event_type]} events, expected {count}")
    assert not problems, "\n".join(problems)


def unique_hub(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("kill_after", [15, 180, 215], ids=lambda n: f"after{n}activities")
def test_sigkill_mid_run_then_restart(tmp_path: Path, azurite_connection_string: str, kill_after: int) -> None:
    conn = azurite_connection_string
    hub = unique_hub("Crash")
    ids = [f"crash-{kill_after}-{n}" for n in range(1, INSTANCES + 1)]
    first, _ = start_devhost(tmp_path, conn, hub, "first")
    second: Devhost | None = None
    try:
        start_instances(first, ids)
        wait_until(lambda: first.activities_run() >= kill_after, 60, f"{kill_after} activity executions", first)
        first.kill()
        ran_before_kill = first.activities_run()
        assert ran_before_kill < TOTAL_ACTIVITIES, "everything finished before the kill: the test proves nothing"
        killed_at = time.monotonic()
        redelivered = asyncio.run(_redeliver_completions(conn, hub, ids))
        second, lease_wait = start_devhost(tmp_path, conn, hub, "second")
        wait_until(lambda: second.activities_run() > 0, 60, "the first resumed step", second)
        resumed = time.monotonic() - killed_at
        statuses = wait_all_completed(second, ids)
        recovery = time.monotonic() - killed_at
        check_instances(conn, hub, ids, statuses)
        dropped = second.log().count("dropped message")
        print(
            f"kill after {ran_before_kill}/{TOTAL_ACTIVITIES} activities; {redelivered} completions sent again; "
            f"restart took {lease_wait:.1f}s (hub lease), first resumed step {resumed:.1f}s after the kill, "
            f"all completed {recovery:.1f}s after it; "
            f"{second.activities_run()} activity executions after the restart; {dropped} duplicates dropped"
        )
        assert second.stop() == 0, second.log()[-3000:]
    finally:
        first.kill()
        if second is not None:
            second.stop()


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[list[Azurite]]:
    """An Azurite this test may stop and restart; the list holds the current process (last item)."""
    location = tmp_path / "azurite-data"
    location.mkdir()
    running = [start_azurite(location=location)]
    try:
        yield running
    finally:
        running[-1].stop()


def test_azurite_restart_under_running_devhost(tmp_path: Path, own_azurite: list[Azurite]) -> None:
    azurite = own_azurite[0]
    conn = azurite.connection_string
    hub = unique_hub("Outage")
    ids = [f"outage-{n}" for n in range(1, INSTANCES + 1)]
    host, _ = start_devhost(tmp_path, conn, hub, "outage")
    try:
        start_instances(host, ids)
        wait_until(lambda: host.activities_run() >= 40, 60, "40 activity executions", host)
        azurite.stop()  # SIGTERM; the data folder stays
        outage_started = time.monotonic()
        # Until devhost has run into the outage (and retried) there is nothing to check.
        wait_until(lambda: "Azure Storage request failed" in host.log(), 60, "devhost to notice the outage", host)
        assert host.process.poll() is None, f"devhost died while storage was down:\n{host.log()[-3000:]}"
        code, body = http("GET", f"{host.base}/admin/host/status", timeout=10)
        assert code == 200, body
        # What needs storage says so (JSON 503) instead of hanging or answering 500.
        asked = time.monotonic()
        code, body = http("GET", f"{host.base}{WEBHOOK}/instances/not-cached-{uuid.uuid4().hex}", timeout=60)
        print(f"GET during the outage: {code} after {time.monotonic() - asked:.1f}s")
        assert code == 503 and "unreachable" in body["Message"], (code, body)
        ran = host.activities_run()
        own_azurite.append(
            start_azurite(location=azurite.location, ports=(azurite.blob_port, azurite.queue_port, azurite.table_port))
        )
        wait_until(lambda: host.activities_run() > ran, 60, "the first resumed step", host)
        print(f"first resumed step {time.monotonic() - outage_started:.1f}s after Azurite stopped")
        statuses = wait_all_completed(host, ids)
        print(
            f"storage down {time.monotonic() - outage_started:.1f}s incl. recovery; "
            f"{host.activities_run()} activity executions"
        )
        check_instances(conn, hub, ids, statuses)
        assert "Azure Storage request failed" in host.log() and "retrying" in host.log()
        assert host.stop() == 0, host.log()[-3000:]
    finally:
        host.stop()


def azurite_saved(azurite: Azurite, hub: str, last_id: str) -> bool:
    """Whether Azurite's data files hold the hub's tables, queues and the last instance's row."""
    files = {name: azurite.location / f"__azurite_db_{name}__.json" for name in ("table", "queue", "blob")}
    texts = {name: path.read_text(errors="replace") if path.exists() else "" for name, path in files.items()}
    return (
        f"{hub}History" in texts["table"]
        and last_id in texts["table"]
        and f"{hub.lower()}-control-00" in texts["queue"]
        and f"{hub.lower()}-leases" in texts["blob"]
    )


def test_azurite_sigkill_loses_acknowledged_writes_and_devhost_heals(
    tmp_path: Path, own_azurite: list[Azurite]
) -> None:
    """Azurite killed (-9) under load and restarted on the same data folder. Azurite persists on an
    interval, so it comes back having lost writes it acknowledged (checkpoints, message deletes,
    sends): devhost, holding the hub lease, must notice (its checkpoints conflict with what storage
    now holds), drop its cached copies, reload, re-derive the lost work from the histories storage
    kept, back off instead of looping, and finish every instance exactly, with the status reads and
    the Instances list agreeing, without a restart."""
    azurite = own_azurite[0]
    conn = azurite.connection_string
    hub = unique_hub("Kill")
    ids = [f"kill-{n}" for n in range(1, INSTANCES + 1)]
    host, _ = start_devhost(tmp_path, conn, hub, "kill")
    try:
        # Azurite saves its tables and queue metadata every few seconds: kill it once the hub itself
        # is on disk (or it comes back without the hub at all), while the instances are running.
        start_instances(host, ids[:1])
        wait_until(lambda: azurite_saved(azurite, hub, ids[0]), 30, "Azurite to save the hub", host)
        start_instances(host, ids[1:], first_seed=2)
        ran_at_save = host.activities_run()
        wait_until(lambda: host.activities_run() >= ran_at_save + 60, 60, "60 more activity executions", host)
        azurite.process.kill()  # SIGKILL: nothing flushed
        azurite.process.wait(timeout=30)
        killed_at = time.monotonic()
        ran = host.activities_run()
        own_azurite.append(
            start_azurite(location=azurite.location, ports=(azurite.blob_port, azurite.queue_port, azurite.table_port))
        )
        wait_until(lambda: host.activities_run() > ran, 60, "the first activity after the restart", host)
        resumed = time.monotonic() - killed_at
        statuses = wait_all_completed(host, ids)
        log_text = host.log()
        retries = log_text.count("retrying the work item")
        print(
            f"Azurite killed after {ran}/{TOTAL_ACTIVITIES} activities; first resumed step {resumed:.1f}s after "
            f"the kill; all completed {time.monotonic() - killed_at:.1f}s after it; {retries} work-item retries; "
            f"storage had lost writes: {'yes' if 'lost the last writes' in log_text else 'no'}"
        )
        check_instances(conn, hub, ids, statuses)
        assert retries < 50 * INSTANCES, f"{retries} work-item retries: a hot loop"
        assert host.stop() == 0, host.log()[-3000:]
    finally:
        host.stop()


@pytest.mark.slow  # a devhost process per case
@pytest.mark.parametrize(("name", "value"), [("DEVHOST_LEASE_SECONDS", "5"), ("DEVHOST_VISIBILITY_SECONDS", "soon")])
def test_bad_crash_settings_are_one_line_errors(name: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEVHOST_STORE", "AzureWebJobsStorage")}
    env[name] = value
    proc = subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--port", str(free_port()), "--script-root", str(APP_ROOT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"devhost: error: {name} must be") and repr(value) in lines[0], proc.stderr


def test_azurite_back_without_the_hub_devhost_recreates_it(tmp_path: Path, own_azurite: list[Azurite]) -> None:
    """Azurite killed (-9) before it ever saved the hub (it persists on an interval) comes back without the
    hub's tables, queues and containers. Made deterministic here by restarting it on an empty data folder
    on the same ports. devhost must recreate the hub's resources (as at start-up), write back from its
    cache the instances whose rows were lost (naming them in the log), re-derive their outstanding work
    and finish every instance exactly, without a restart (issue 12 item 2)."""
    azurite = own_azurite[0]
    conn = azurite.connection_string
    hub = unique_hub("Wiped")
    ids = [f"wiped-{n}" for n in range(1, 4)]
    host, _ = start_devhost(tmp_path, conn, hub, "wiped")
    try:
        start_instances(host, ids)
        wait_until(lambda: host.activities_run() >= 20, 60, "20 activity executions", host)
        azurite.process.kill()  # SIGKILL, then an empty folder: as if it had never saved anything
        azurite.process.wait(timeout=30)
        killed_at = time.monotonic()
        ran = host.activities_run()
        assert ran < len(ids) * (FAN + CHAIN), "everything finished before the kill: the test proves nothing"
        empty = tmp_path / "azurite-empty"
        empty.mkdir()
        own_azurite.append(
            start_azurite(location=empty, ports=(azurite.blob_port, azurite.queue_port, azurite.table_port))
        )
        wait_until(lambda: host.activities_run() > ran, 60, "the first activity after the restart", host)
        resumed = time.monotonic() - killed_at
        statuses = wait_all_completed(host, ids, timeout=90)
        log_text = host.log()
        print(
            f"Azurite killed after {ran} activities and restarted empty; first resumed step {resumed:.1f}s after "
            f"the kill; all completed {time.monotonic() - killed_at:.1f}s after it; {host.activities_run()} "
            "activity executions"
        )
        assert "recreated" in log_text and "written back" in log_text, log_text[-3000:]
        restored = {iid for line in re.findall(r"written back: (.*)", log_text) for iid in line.split(", ")}
        assert set(ids) <= restored, log_text[-3000:]
        check_instances(conn, hub, ids, statuses)
        assert host.stop() == 0, host.log()[-3000:]
    finally:
        host.stop()
