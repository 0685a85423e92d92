"""`DevhostProcess`, the public helper that runs `devhost start` for end-to-end tests: what a test sees when the
host cannot start. (Serving, stopping and killing are what every end-to-end test does with it: tests/microsoft,
tests/e2e, tests/dashboard, and the app's tests/app/e2e.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost import DevhostExited, DevhostProcess


@pytest.mark.slow  # a devhost process (a second of imports)
def test_a_host_that_cannot_start_is_reported_with_its_exit_code_and_log(tmp_path: Path) -> None:
    app = tmp_path / "empty-app"
    app.mkdir()
    host = DevhostProcess(app, tmp_path).start(DEVHOST_STORE="memory")
    with pytest.raises(DevhostExited) as exited:
        host.wait_ready(timeout=60)
    assert exited.value.returncode == 1
    assert "no function_app.py" in exited.value.log and "no function_app.py" in str(exited.value)
    assert host.log_path.parent == tmp_path and host.log() == exited.value.log
    assert host.stop() == 1 and not host.serving()
