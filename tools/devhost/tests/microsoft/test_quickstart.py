"""The azd quickstart's app (Azure-Samples/durable-functions-quickstart-python-azd, src/), unchanged, on
`devhost start`: `fetch_orchestration` fans out to the async aiohttp activity `fetch_title` for four
Microsoft Learn pages and joins the titles with "; " (README "Fan-out/fan-in"). The pages are served
by a loopback server (loopback_web/sitecustomize.py redirects the app's aiohttp requests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .support import Devhost, http

LEARN = "https://learn.microsoft.com"
FAILING_PAGE = "/azure/azure-functions/functions-scenarios"


class _Learn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == FAILING_PAGE:
            self.send_error(503)
            return
        title = self.path.rsplit("/", 1)[-1].replace("-", " ").title()
        body = f"<html><head><title>{title} | Microsoft Learn</title></head></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def learn_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Learn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_orchestration_fans_out_async_activities(
    microsoft_app: Callable[[str], Path], tmp_path: Path, learn_server: str
) -> None:
    redirect = str(Path(__file__).parent / "loopback_web")
    host = Devhost(
        microsoft_app("durable_quickstart"),
        tmp_path,
        PYTHONPATH=redirect,
        DEVHOST_TEST_REDIRECT=f"{LEARN}={learn_server}",
    ).wait_ready()
    try:
        started = http("GET", f"{host.base}/api/orchestrators/fetch_orchestration")
        assert started.status == 202, started.text
        done = host.wait_status(started.json()["statusQueryGetUri"])
        assert done["runtimeStatus"] == "Completed", done
        titles = done["output"].split("; ")
        assert titles[0] == "Durable Functions Overview"
        assert titles[1] == "Durable Task Scheduler"
        assert titles[2].startswith(f"Error fetching from {LEARN}{FAILING_PAGE}: 503")  # the app's own error path
        assert titles[3] == "Functions Create Ai Enabled Apps"
        assert "Fetching data." in host.log()  # the orchestrator's logger, once (not once per replay)
        assert host.log().count("Fetching data.") == 1
    finally:
        host.stop()
