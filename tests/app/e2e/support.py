"""Running the app under devhost as a user does, and talking to it over HTTP."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from devhost import DevhostProcess

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


class AppHost(DevhostProcess):
    """`python -m devhost start` on the repo's function_app.py, on `storage` and a task hub of its own."""

    def __init__(self, log_dir: Path, storage: str) -> None:
        super().__init__(REPO, log_dir)
        self.storage = storage
        self.hub = f"E2e{uuid.uuid4().hex[:16]}"

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


def start_app_host(tmp: Path, storage: str, **settings: str) -> AppHost:
    """Start devhost on the app with its settings in the environment (local.settings.json only fills gaps)."""
    host = AppHost(tmp, storage)
    host.start(
        {
            "AzureWebJobsStorage": storage,
            "TASK_HUB_NAME": host.hub,
            "TARGETS_BASE_URL": f"{host.base}/api/simulator",
            "TARGET_SIMULATOR_ENABLED": "true",
            "TARGET_API_KEY": "test-key",
            # Retries are what these tests check, not the 5 s between them (a module may set it back).
            "TARGET_RETRY_INTERVAL_SECONDS": "0.2",
            **settings,
        },
        unset=app_settings_names(),
        cwd=REPO,
    )
    return host.wait_ready()
