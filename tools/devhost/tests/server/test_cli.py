"""`python -m devhost start` as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import PROJECT_ROOT as REPO

from .support import SAMPLE_ROOT

pytestmark = pytest.mark.slow  # each test starts devhost processes (a second or more of imports apiece)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEVHOST_STORE", "AzureWebJobsStorage", "HUB_NAME")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _start(root: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--port", str(port), "--script-root", str(root)],
        cwd=REPO,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _http(method: str, url: str, body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait_for_port(proc: subprocess.Popen[str], port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"devhost exited early ({proc.returncode}): {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("devhost did not open its port")


def test_start_serve_orchestrate_and_stop_on_sigint(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(SAMPLE_ROOT, root)
    port = _free_port()
    proc = _start(root, port, DEVHOST_STORE="memory")
    try:
        _wait_for_port(proc, port)
        status, body = _http("POST", f"http://127.0.0.1:{port}/api/orchestrators/hello_sequence", "cli")
        assert status == 202, body
        assert isinstance(body, dict)
        url = body["statusQueryGetUri"]
        assert url.startswith(f"http://127.0.0.1:{port}/runtime/webhooks/durabletask/instances/")
        assert "taskHub=SampleHub" in url  # hubName "%HUB_NAME%" resolved from local.settings.json
        deadline = time.monotonic() + 20
        while True:
            code, state = _http("GET", url)
            assert isinstance(state, dict)
            if state["runtimeStatus"] == "Completed":
                assert code == 200 and state["output"] == ["Hello cli-1", "Hello cli-2", "Hello cli-3"]
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        code, echoed = _http("GET", f"http://127.0.0.1:{port}/api/echo/3")
        assert code == 201 and isinstance(echoed, dict) and echoed["setting"] == "from-local-settings"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http_start: [POST] http://localhost:{port}/api/orchestrators/{{name}}/{{instance_id?}}" in out
    assert "tick: timerTrigger (0 0 0 1 1 *, runs on startup)" in out
    assert "queue_item: queueTrigger\n" in out  # memory mode polls no storage queue
    assert "Executed 'Functions.http_start' (Succeeded" in out and "InstanceId=" in out
    assert "devhost stopped." in out
    assert "Traceback" not in err


def test_import_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text("import azure.functions as func\n\nimport no_such_module_xyz\n")
    proc = _start(tmp_path, _free_port(), DEVHOST_STORE="memory")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        "devhost: error: function_app.py failed to import: ModuleNotFoundError: "
        "No module named 'no_such_module_xyz' (function_app.py:3)"
    ]


def test_missing_app_and_bad_host_json(tmp_path: Path) -> None:
    proc = _start(tmp_path, _free_port(), DEVHOST_STORE="memory")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "no function_app.py" in err and "Traceback" not in err
    shutil.copy(SAMPLE_ROOT / "function_app.py", tmp_path / "function_app.py")
    (tmp_path / "host.json").write_text("{oops")
    proc = _start(tmp_path, _free_port(), DEVHOST_STORE="memory")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "host.json is not valid JSON" in err and "Traceback" not in err


def test_unreachable_storage_is_one_line_and_exit_1(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(SAMPLE_ROOT, root)
    dead = _free_port()
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=ZHVtbXk=;"
        f"BlobEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{dead}/"
        f"devstoreaccount1;TableEndpoint=http://127.0.0.1:{dead}/devstoreaccount1"
    )
    proc = _start(root, _free_port(), AzureWebJobsStorage=conn)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("devhost: error: storage is unreachable"), err


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(SAMPLE_ROOT, root)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = _start(root, busy.getsockname()[1], DEVHOST_STORE="memory")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "cannot listen on" in err and "Traceback" not in err


def test_azure_storage_store_on_azurite_with_hub_lease(tmp_path: Path, azurite_connection_string: str) -> None:
    """The default store (Azure Storage) on a private Azurite; a second host on the same hub is refused."""
    root = tmp_path / "app"
    shutil.copytree(SAMPLE_ROOT, root)
    hub = f"Cli{int(time.time() * 1000) % 10**9}"
    env = {"AzureWebJobsStorage": azurite_connection_string, "HUB_NAME": hub}
    port = _free_port()
    proc = _start(root, port, **env)
    try:
        _wait_for_port(proc, port, timeout=60)
        status, body = _http("POST", f"http://127.0.0.1:{port}/api/orchestrators/hello_sequence/az-1", "azure")
        assert status == 202, body
        deadline = time.monotonic() + 60
        while True:
            code, state = _http("GET", f"http://127.0.0.1:{port}/runtime/webhooks/durabletask/instances/az-1")
            assert isinstance(state, dict)
            if state.get("runtimeStatus") == "Completed":
                assert state["output"] == ["Hello azure-1", "Hello azure-2", "Hello azure-3"]
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        second = _start(root, _free_port(), **env)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1, err
        assert len(err.strip().splitlines()) == 1 and "in use" in err, err
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "store AzureStorageStore" in out and "devhost stopped." in out
    assert "queue_item: queueTrigger (polling queue 'work-items')" in out
