"""`make run` (scripts/run-local.sh) as a developer uses it: Azurite + devhost come up, a rollout
completes, Ctrl+C stops everything the script started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from .support import REPO, free_port, http, wait_for

SCRIPT = REPO / "scripts" / "run-local.sh"

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find leftovers"),
    pytest.mark.azurite,
]  # the script starts its own Azurite (node_modules)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def _default_sigint() -> None:
    # A terminal delivers Ctrl+C to a shell whose SIGINT is not ignored, even if ours is (CI, nohup).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_rollout_then_ctrl_c(tmp_path: Path, blob: int, queue: int, table: int) -> str:
    """Start the script on a free PORT with the given Azurite ports, complete a rollout, Ctrl+C; its output."""
    port = free_port()
    data = tmp_path / "azurite-data"
    drop = {"AzureWebJobsStorage", "TARGETS_BASE_URL", "DEVHOST_STORE", "TASK_HUB_NAME", "PORT"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AZURITE_")}
    env.update(
        PORT=str(port),
        AZURITE_BLOB_PORT=str(blob),
        AZURITE_QUEUE_PORT=str(queue),
        AZURITE_TABLE_PORT=str(table),
        AZURITE_LOCATION=str(data),
        TASK_HUB_NAME=f"Run{uuid.uuid4().hex[:12]}",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "run-local.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(SCRIPT)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_default_sigint,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return http("GET", f"{base}/admin/host/status").status == 200
            except OSError:
                return False

        wait_for(up, "the app to answer", timeout=90, interval=0.2)
        update_id = f"run-{uuid.uuid4().hex[:8]}"
        started = http(
            "POST",
            f"{base}/api/updates",
            {
                "updateId": update_id,
                "package": "agent",
                "version": "9.1.0",
                "targets": ["web-1", "web-2"],
                "healthCheck": {"intervalSeconds": 1, "timeoutMinutes": 0},
            },
        )
        assert started.status == 202, started.text

        def finished() -> dict[str, object] | None:
            view = http("GET", f"{base}/api/updates/{update_id}").body
            return view if view["runtimeStatus"] == "Completed" else None

        view = wait_for(finished, "the rollout to complete")
        assert view["outcome"] == "Succeeded"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C: the terminal signals the foreground process group
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    output = log_path.read_text()
    assert proc.returncode == 0, output
    assert "devhost stopped." in output
    assert processes_mentioning(f"--port {port} ") == []  # no devhost left behind
    return output


def test_run_local_starts_azurite_serves_the_app_and_stops_both_on_ctrl_c(tmp_path: Path) -> None:
    output = run_rollout_then_ctrl_c(tmp_path, free_port(), free_port(), free_port())
    data = tmp_path / "azurite-data"
    assert "starting Azurite" in output and (data / "azurite.log").exists()  # its own, in the folder given
    assert "Azurite stopped." in output
    assert processes_mentioning(str(data)) == []  # no Azurite left behind


def test_run_local_reuses_a_running_azurite_and_leaves_it_running(
    tmp_path: Path, azurite_connection_string: str
) -> None:
    ports = dict(re.findall(r"(Blob|Queue|Table)Endpoint=http://127\.0\.0\.1:(\d+)/", azurite_connection_string))
    output = run_rollout_then_ctrl_c(tmp_path, int(ports["Blob"]), int(ports["Queue"]), int(ports["Table"]))
    assert "already listens on port" in output and "Azurite stopped." not in output
    with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        assert service.get_service_properties() is not None  # the session's Azurite still answers
