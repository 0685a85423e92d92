"""Running the app under devhost as a user does, and talking to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    """An id no other test (or earlier run on the same hub) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def app_settings_names() -> set[str]:
    values = json.loads((REPO / "local.settings.json").read_text())["Values"]
    return set(values)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.2) -> T:
    """Poll until `check` returns something truthy; fail with `what` (and the last value) on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text) if self.text else None


def http(method: str, url: str, body: object = None, *, raw: bytes | None = None) -> Response:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Response(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers), exc.read().decode())


@dataclass
class AppHost:
    """One `python -m devhost start` on the repo's function_app.py; output goes to `log_path`."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    storage: str
    hub: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> Response:
        return http("GET", self.base + path)

    def post(self, path: str, body: object = None, *, raw: bytes | None = None) -> Response:
        return http("POST", self.base + path, body, raw=raw)

    def update(self, update_id: str) -> dict[str, Any]:
        resp = self.get(f"/api/updates/{update_id}")
        assert resp.status == 200, (resp.status, resp.text)
        body: dict[str, Any] = resp.body
        return body

    def wait_done(self, update_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """GET /api/updates/{id} until the rollout has finished; returns the last view."""

        def done() -> dict[str, Any] | None:
            view = self.update(update_id)
            return view if view["runtimeStatus"] not in ("Running", "Pending") else None

        return wait_for(done, f"update {update_id} to finish", timeout)

    def wait_exists(self, update_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """For rollouts started in the background (queue messages): wait until GET finds them."""

        def found() -> dict[str, Any] | None:
            resp = self.get(f"/api/updates/{update_id}")
            return resp.body if resp.status == 200 else None

        return wait_for(found, f"update {update_id} to exist", timeout)

    def wait_phase(self, update_id: str, phase: str, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            resp = self.get(f"/api/updates/{update_id}")
            return resp.body if resp.status == 200 and resp.body["phase"] == phase else None

        return wait_for(reached, f"update {update_id} to reach phase {phase}", timeout)

    def wait_log(self, text: str, timeout: float = 30.0) -> str:
        return wait_for(lambda: self.log() if text in self.log() else None, f"{text!r} in the devhost log", timeout)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_app_host(tmp: Path, storage: str, **settings: str) -> AppHost:
    """Start devhost on the app with its settings in the environment (local.settings.json only fills gaps)."""
    port = free_port()
    hub = f"E2e{uuid.uuid4().hex[:16]}"
    drop = app_settings_names() | {"DEVHOST_STORE", "AzureWebJobsStorage"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "AzureWebJobsStorage": storage,
            "TASK_HUB_NAME": hub,
            "TARGETS_BASE_URL": f"http://127.0.0.1:{port}/api/simulator",
            "TARGET_SIMULATOR_ENABLED": "true",
            "TARGET_API_KEY": "test-key",
            # Retries are what these tests check, not the 5 s between them (a module may set it back).
            "TARGET_RETRY_INTERVAL_SECONDS": "0.2",
            **settings,
        }
    )
    log_path = tmp / "devhost.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "start", "--port", str(port), "--script-root", str(REPO)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    host = AppHost(port, log_path, process, storage, hub)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"devhost exited early ({process.returncode}):\n{host.log()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        wait_for(ready, "devhost to open its port", timeout=60, interval=0.1)
    except BaseException:
        host.stop()
        raise
    return host
