"""Helpers for the dashboard's browser tests: devhost as a subprocess on Azurite, and a headless Chromium.

Chromium comes from the system (scripts/bootstrap.sh installs it with apt when /usr/bin/chromium is missing);
Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devhost import DevhostProcess
from tests import PROJECT_ROOT as REPO

SCREENSHOTS = REPO / ".artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


class Host(DevhostProcess):
    """devhost serving the repo's function_app.py, with JSON calls to it."""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)

    def wait_status(self, instance_id: str, wanted: set[str], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            _, body, _ = self.call("GET", f"/runtime/webhooks/durabletask/instances/{instance_id}")
            if isinstance(body, dict) and body.get("runtimeStatus") in wanted:
                return body
            time.sleep(0.2)
        raise AssertionError(f"{instance_id} did not reach {wanted}: {body}\n{self.log()[-3000:]}")


@contextmanager
def devhost_on_azurite(connection_string: str, hub: str, log_dir: Path, **extra: str) -> Iterator[Host]:
    """`python -m devhost start` for the real function_app.py, its simulator serving the targets.

    The task hub is on Azurite unless `extra` sets DEVHOST_STORE=memory (reports still go to Azurite)."""
    with Host(REPO, log_dir) as host:
        host.start(
            {
                "AzureWebJobsStorage": connection_string,
                "TASK_HUB_NAME": hub,
                "TARGETS_BASE_URL": f"{host.base}/api/simulator",
                "TARGET_SIMULATOR_ENABLED": "true",
                "TARGET_API_KEY": "e2e-simulator-key",
                **extra,
            },
            cwd=REPO,
        )
        yield host.wait_ready()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artifact in .artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
