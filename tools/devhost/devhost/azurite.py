"""Start and stop a private Azurite for tests (public: `start_azurite`, `Azurite`).

Each test session gets its own Azurite on free loopback ports with its data in a temp
directory, so tests never touch a developer's running emulator (ports 10000-10002) or
leave state behind. The binary is `DEVHOST_AZURITE` if set, else the nearest
`node_modules/.bin/azurite` above the working directory, else `azurite` on PATH: a project
that installs Azurite with npm (as this template does) needs no setting.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteMissing(RuntimeError):
    """No Azurite binary was found: the checkout was not bootstrapped (npm ci)."""


def azurite_bin(start: Path | None = None) -> Path | None:
    """Where Azurite is: DEVHOST_AZURITE, the nearest node_modules/.bin/azurite, or PATH."""
    if configured := os.environ.get("DEVHOST_AZURITE"):
        return Path(configured)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return candidate
    found = shutil.which("azurite")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    """A full connection string: the explicit endpoints are needed because the ports are not the defaults."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT};"
    )


def _die_with_parent() -> None:
    """Linux: have the kernel stop Azurite if the test process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Azurite:
    """A running Azurite process; `stop()` ends it (and only it)."""

    process: subprocess.Popen[bytes]
    location: Path
    blob_port: int
    queue_port: int
    table_port: int
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def start_azurite(
    timeout: float = 30.0, *, location: Path | None = None, ports: tuple[int, int, int] | None = None
) -> Azurite:
    """Start Azurite and wait until all three services accept connections.

    By default on free ports with its data in a fresh temp directory (removed by `stop`);
    pass `location` (kept) and `ports` (blob, queue, table) to restart an Azurite on the
    data and ports of one that was stopped."""
    binary = azurite_bin()
    if binary is None or not binary.exists():
        raise AzuriteMissing(
            "Azurite is not installed (no node_modules/.bin/azurite above the working directory, none on PATH,"
            " DEVHOST_AZURITE unset); run `npm install azurite` or the project's bootstrap script."
        )
    tmp = None
    if location is None:
        tmp = tempfile.TemporaryDirectory(prefix="devhost-azurite-")
        location = Path(tmp.name)
    if ports is None:
        ports = free_port(), free_port(), free_port()
        while len(set(ports)) < 3:
            ports = free_port(), free_port(), free_port()
    blob, queue, table = ports
    args = [
        str(binary),
        "--location",
        str(location),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(queue),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(table),
    ]
    log = open(location / "azurite.log", "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(location),
        env={**os.environ, "AZURITE_ACCEPT_EULA": "true"},
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    log.close()
    azurite = Azurite(process, location, blob, queue, table, tmp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (location / "azurite.log").read_text(errors="replace")[-2000:]
            azurite.stop()
            raise RuntimeError(f"Azurite exited with code {process.returncode}: {output}")
        if all(_answers(p) for p in ports):
            return azurite
        time.sleep(0.1)
    azurite.stop()
    raise RuntimeError(f"Azurite did not answer on ports {ports} within {timeout:.0f}s")
