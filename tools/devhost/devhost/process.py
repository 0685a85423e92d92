"""`devhost start` as a child process, for end-to-end tests (public: `DevhostProcess`, `DevhostExited`).

An end-to-end test runs the app the way a developer does: `python -m devhost start` in a process of its own,
on a free loopback port, talked to over HTTP. Each such test needs the same care, so it lives here once:

* the environment is the test's minus the settings that would point the child at another task hub
  (`DEVHOST_STORE`, `AzureWebJobsStorage`) and pytest's `PYTEST_CURRENT_TEST`, plus what the test sets;
* stdout and stderr go to one log file, unbuffered, so a failure can show what the host said;
* the child leads its own process group, so a test can SIGKILL it and everything it started (a crash)
  and Ctrl+C in the terminal does not reach it in the middle of a test's teardown;
* ready means serving: `/admin/host/status` answers 200 (the HTTP server, the dispatcher and the triggers are
  started before it listens for requests), polled with a deadline; a child that exits first is reported
  with its exit code and the end of its log instead of waiting out the deadline;
* `stop` is the developer's Ctrl+C (SIGTERM: stop accepting, drain, release the hub lease) and kills the
  process group only if the drain does not end.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from .azurite import free_port

# Not inherited: settings that would send the child to another task hub or store, and pytest's name of the
# current test (the child is not that test).
_NOT_INHERITED = frozenset({"DEVHOST_STORE", "AzureWebJobsStorage", "PYTEST_CURRENT_TEST"})
_LOG_TAIL = 3000


class DevhostExited(RuntimeError):
    """The devhost process ended while a caller waited for it to serve (a start-up error, a hub in use)."""

    def __init__(self, returncode: int, log: str) -> None:
        super().__init__(f"devhost exited ({returncode}):\n{log[-_LOG_TAIL:]}")
        self.returncode = returncode
        self.log = log


class DevhostProcess:
    """`python -m devhost start --script-root SCRIPT_ROOT` on a free loopback port, its output in a log file.

    Made in two steps so the port is known before the process starts (an app may need its own URL in a
    setting)::

        host = DevhostProcess(app_folder, tmp_path)
        host.start(DEVHOST_STORE="memory", MY_CALLBACK_URL=f"{host.base}/api/callback").wait_ready()
        try:
            ...  # HTTP to host.base
        finally:
            host.stop()

    or `with DevhostProcess(app_folder, tmp_path).start(...).wait_ready() as host: ...`.
    """

    def __init__(self, script_root: Path, log_dir: Path) -> None:
        self.script_root = Path(script_root)
        self.port = free_port()
        self.log_path = Path(log_dir) / f"devhost-{self.script_root.name}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """The host's URL, `http://127.0.0.1:PORT` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("devhost is not started: call start() first")
        return self._process

    def start(
        self,
        env: Mapping[str, str] | None = None,
        *,
        unset: Iterable[str] = (),
        args: Iterable[str] = (),
        cwd: Path | None = None,
        **settings: str,
    ) -> Self:
        """Start the process and return at once (`wait_ready` waits until it serves).

        `env` and `settings` are added to the inherited environment (without `unset` and the task-hub
        settings above); `args` are more `devhost start` options (e.g. `--verbose`); `cwd` is the folder
        it starts in (default: this process's)."""
        environ = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED.union(unset)}
        environ.update(PYTHONUNBUFFERED="1")
        environ.update(env or {})
        environ.update(settings)
        command = [sys.executable, "-m", "devhost", "start", "--port", str(self.port)]
        command += ["--script-root", str(self.script_root), *args]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, cwd=cwd, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def log(self) -> str:
        """Everything the process has written so far (stdout and stderr, interleaved)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def serving(self) -> bool:
        """True when `/admin/host/status` answers 200 now (a direct connection: no proxy settings apply)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
        try:
            connection.request("GET", "/admin/host/status")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.05) -> Self:
        """Poll until the host serves; `DevhostExited` if it ends first, `TimeoutError` at the deadline.

        A host that did not come up is killed before the error is raised: nobody is left to stop it."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                if (code := self.process.poll()) is not None:
                    raise DevhostExited(code, self.log())
                if self.serving():
                    return self
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"devhost did not start within {timeout:.0f}s:\n{self.log()[-_LOG_TAIL:]}")
                time.sleep(interval)
        except BaseException:
            self.kill()
            raise

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash (no drain, no lease release, nothing flushed)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful stop: drain, release the hub lease), then `kill` if it is not done within
        `timeout`; returns the exit code (None if it was never started)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
