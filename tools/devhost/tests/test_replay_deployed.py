"""`devhost replay --url`: the pre-deploy check, run as a user runs it against a deployed app.

A devhost (memory store, real HTTP on loopback) serves the OLD code with instances in flight, as the
deployed app would; the checkout (a tmp copy) holds the NEW code. The command reads the running instances
through the Durable HTTP API page by page (`top`, `x-ms-continuation-token`), replays each against the new
code and exits 1 with the first divergence of each, 0 when the change is safe for them.

Tests internals too (not devhost's public API): `devhost.index`, `devhost.replay._remote`, `devhost.server.app`,
`devhost.store.memory`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.index import AppIndex
from devhost.replay._remote import RemoteError, fetch_running, replay_deployed
from devhost.server.app import DevHost
from devhost.store.memory import MemoryStore
from tests import import_file

WEBHOOK = "/runtime/webhooks/durabletask"
KEY = "not-a-real-key-5f1c"

APP = """
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def approval(context):
    order = context.get_input()
    prepared = yield context.call_activity("{first}", order)
    approved = yield context.wait_for_external_event("Approve")
    {after}
    return [prepared, approved]


@app.activity_trigger(input_name="order")
def prepare(order):
    return f"prepared {order}"


@app.activity_trigger(input_name="order")
def prepare_v2(order):
    return f"prepared {order} (v2)"


@app.activity_trigger(input_name="order")
def ship(order):
    return f"shipped {order}"
"""


def write_app(root: Path, first: str = "prepare", after: str = "") -> Path:
    root.mkdir()
    (root / "function_app.py").write_text(textwrap.dedent(APP).replace("{first}", first).replace("{after}", after))
    (root / "host.json").write_text('{"version": "2.0"}')
    return root


def import_app(root: Path) -> Any:
    return import_file(root / "function_app.py", f"deployed_app_{root.parent.name}").app


async def devhost_replay(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devhost", "replay", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow  # several `devhost replay` processes
async def test_replay_running_instances_of_a_deployed_app(tmp_path: Path) -> None:
    deployed = write_app(tmp_path / "deployed")
    breaking = write_app(tmp_path / "breaking", first="prepare_v2")  # changes what in-flight instances did
    compatible = write_app(tmp_path / "compatible", after='yield context.call_activity("ship", order)')
    host = DevHost(AppIndex.from_app(import_app(deployed)), MemoryStore(), enable_timers=False)
    port = await host.start(0)
    api = f"http://127.0.0.1:{port}{WEBHOOK}"
    try:
        async with aiohttp.ClientSession() as session:
            ids = []
            for order in ("a", "b", "c"):
                async with session.post(f"{api}/orchestrators/approval", json={"order": order}) as resp:
                    assert resp.status == 202
                    ids.append((await resp.json())["id"])
            waiting = [await wait_until_waiting(session, api, iid) for iid in ids]
            async with session.post(f"{api}/instances/{ids[2]}/raiseEvent/Approve", json=True) as resp:
                assert resp.status == 202
            await wait_for_status(session, api, ids[2], "Completed")  # finished: nothing to check

            # The breaking change: both running instances diverge, each reported with its first divergence.
            code, out, err = await devhost_replay(
                "--url", api, "--code", KEY, "--page-size", "1", "--script-root", str(breaking)
            )
            assert code == 1, out + err
            lines = out.splitlines()
            assert lines[-1] == "2 running instance(s) checked: 2 diverge"
            for iid, order in zip(ids[:2], "ab", strict=True):
                line = next(line for line in lines if line.startswith(iid))
                assert line == (
                    f"{iid} (approval, Running): DIVERGENCE: episode 2: the recording completed "
                    f'activity \'prepare\' with input {{"order": "{order}"}}, but the current code never '
                    f"scheduled it (its pending activity calls: 'prepare_v2' with input "
                    f'{{"order": "{order}"}} (sequence number 0))'
                )
            assert ids[2] not in out
            assert KEY not in out + err

            # A change that only adds work after the wait is safe for them.
            code, out, err = await devhost_replay("--url", api, "--code", KEY, "--script-root", str(compatible))
            assert code == 0, out + err
            assert out.splitlines()[-1] == "2 running instance(s) checked: 0 diverge"

            # The same check from exported histories in a folder.
            exports = tmp_path / "exports"
            exports.mkdir()
            for iid, status in zip(ids, waiting, strict=True):
                (exports / f"{iid}.json").write_text(json.dumps(status))
            code, out, _ = await devhost_replay(str(exports), "--script-root", str(breaking))
            assert code == 1 and out.splitlines()[-1] == "3 recording(s): 3 diverge, 0 unreadable"
    finally:
        await host.stop()

    # Nothing listening there any more: one clear error (the CLI prints it and exits 2), without the key.
    with pytest.raises(RemoteError) as unreachable:
        await asyncio.to_thread(lambda: list(fetch_running(api, KEY)))
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach {api}/instances:") and KEY not in message


async def wait_until_waiting(session: aiohttp.ClientSession, api: str, iid: str) -> dict[str, Any]:
    """Poll until the instance has run its first activity and waits for the event; returns its status."""
    url = f"{api}/instances/{iid}?showHistory=true&showHistoryOutput=true&showInput=true"
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with session.get(url) as resp:
            status = await resp.json()
        assert status.get("runtimeStatus") in ("Pending", "Running"), (status.get("output"), status)
        if any(ev["EventType"] == "TaskCompleted" for ev in status.get("historyEvents") or []):
            return dict(status)
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.02)


async def wait_for_status(session: aiohttp.ClientSession, api: str, iid: str, wanted: str) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with session.get(f"{api}/instances/{iid}") as resp:
            status = await resp.json()
        if status.get("runtimeStatus") == wanted:
            return
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.02)


def test_what_is_asked_of_the_api_and_what_it_answers() -> None:
    """The requests the check makes (the key as `code`, the running statuses, `top`, the continuation token) and
    how it treats the answers: entities and instances that ended meanwhile are skipped, an unreadable history is
    reported for that instance only, a refused key is one clear error."""
    app = import_app_source(APP.replace("{first}", "prepare").replace("{after}", ""))
    asked: list[tuple[str, dict[str, str]]] = []
    waiting = {
        "name": "approval",
        "runtimeStatus": "Running",
        "input": {"order": "a"},
        "historyEvents": [
            {
                "EventType": "ExecutionStarted",
                "Timestamp": "2026-11-30T08:00:00Z",
                "FunctionName": "approval",
                "Input": '{"order": "a"}',
            },
            {
                "EventType": "TaskCompleted",
                "Timestamp": "2026-11-30T08:00:01Z",
                "ScheduledTime": "2026-11-30T08:00:00Z",
                "FunctionName": "prepare",
                "Result": "prepared a",
            },
        ],
    }
    pages = {
        None: ([{"instanceId": "one"}, {"instanceId": "@counter@k"}], "tok1"),
        "tok1": ([{"instanceId": "done-now"}, {"instanceId": "broken"}], None),
    }
    details = {
        "one": {**waiting, "instanceId": "one"},
        "done-now": {**waiting, "runtimeStatus": "Completed"},
        "broken": {**waiting, "instanceId": "broken", "historyEvents": [{"EventType": "Nonsense"}]},
    }

    def fetch(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        asked.append((url, headers))
        path, _, query = url.partition("?")
        if path.endswith("/instances"):
            body, token = pages[headers.get("x-ms-continuation-token")]
            return 200, ({"x-ms-continuation-token": token} if token else {}), json.dumps(body).encode()
        return 202, {}, json.dumps(details[path.rsplit("/", 1)[1]]).encode()

    items = list(
        replay_deployed(app, "https://app.example/runtime/webhooks/durabletask/", "k3y", page_size=2, fetch=fetch)
    )
    assert [(i.instance_id, i.report is not None and i.report.ok) for i in items] == [("one", True), ("broken", False)]
    assert items[1].report is None and "Nonsense" in str(items[1].error)
    first_list, second_list = (u for u, _ in asked if u.split("?")[0].endswith("/instances"))
    assert first_list == (
        "https://app.example/runtime/webhooks/durabletask/instances?code=k3y&runtimeStatus="
        "Pending%2CRunning%2CSuspended%2CContinuedAsNew&top=2&showInput=false"
    )
    assert (
        "https://app.example/runtime/webhooks/durabletask/instances/one?code=k3y&showHistory=true"
        "&showHistoryOutput=true&showInput=true",
        {},
    ) in asked
    assert not any("%40counter" in u or "@counter" in u.split("?")[0] for u, _ in asked)  # entities: skipped
    assert [h for _, h in asked if h] == [{"x-ms-continuation-token": "tok1"}]

    def refused(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 401, {}, b""

    with pytest.raises(RemoteError) as err:
        list(fetch_running("https://app.example/runtime/webhooks/durabletask", "wrong", fetch=refused))
    assert str(err.value) == (
        "https://app.example/runtime/webhooks/durabletask/instances answered 401: pass the "
        "app's durabletask_extension system key with --code"
    )


def import_app_source(source: str) -> Any:
    spec = importlib.util.spec_from_loader("deployed_app_inline", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(textwrap.dedent(source), "<deployed app>", "exec"), module.__dict__)
    return module.app
