"""Run a Microsoft app on `devhost start` (a real subprocess on a free loopback port) and talk HTTP to it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devhost import DevhostProcess
from tests import PROJECT_ROOT

TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Response:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers))


class Devhost(DevhostProcess):
    """`python -m devhost start --script-root <app>` on the memory hub unless `env` says otherwise, started."""

    def __init__(self, root: Path, log_dir: Path, **env: str) -> None:
        super().__init__(root, log_dir)
        self.start({"DEVHOST_STORE": "memory", **env}, cwd=PROJECT_ROOT)

    # ------------------------------------------------------------------ Durable HTTP API
    def status(self, status_url: str, **query: str) -> dict[str, Any]:
        sep = "&" if "?" in status_url else "?"
        url = status_url + "".join(f"{sep if i == 0 else '&'}{k}={v}" for i, (k, v) in enumerate(query.items()))
        response = http("GET", url)
        assert response.status in (200, 202), (response.status, response.text)
        result: dict[str, Any] = response.json()
        return result

    def wait_status(
        self,
        status_url: str,
        statuses: set[str] | None = None,
        timeout: float = 30.0,
        custom_status: Any = ...,
        **query: str,
    ) -> dict[str, Any]:
        """Poll a statusQueryGetUri until runtimeStatus is in `statuses` (default: terminal)."""
        wanted = statuses or TERMINAL
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.status(status_url, **query)
            custom_ok = custom_status is ... or body.get("customStatus") == custom_status
            if body.get("runtimeStatus") in wanted and custom_ok:
                return body
            time.sleep(0.05)
        raise AssertionError(f"still {body.get('runtimeStatus')} after {timeout}s: {body}\n{self.log()[-2000:]}")

    def instance_url(self, instance_id: str) -> str:
        return f"{self.base}/runtime/webhooks/durabletask/instances/{instance_id}"
