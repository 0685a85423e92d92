"""Loading an app as the Python worker does (azure-functions-python-worker `loader.py` 242-262,
`index_function_app`, at 7e6acf3): the one top-level FunctionRegister instance whatever its name;
none or several is one clear error; host.json problems are one line, never a traceback.

Tests internals (not devhost's public API): imports `devhost.loader`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from devhost.loader import AppLoadError, load_function_app

from . import PROJECT_ROOT

APP = """
import azure.functions as func
import azure.durable_functions as df

{decl}

@{var}.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hi")
"""


def write_app(root: Path, decl: str, var: str = "myApp", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "function_app.py").write_text(textwrap.dedent(APP).format(decl=decl, var=var) + extra)
    return root


def test_any_variable_name(tmp_path: Path) -> None:
    root = write_app(tmp_path, "myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)")
    app = load_function_app(root)
    assert [f.get_function_name() for f in app.get_functions()] == ["hello"]


def test_a_function_app_imported_from_another_module_counts(tmp_path: Path) -> None:
    # The worker walks module.__dir__(), which holds imported names too.
    (tmp_path / "apps_mod.py").write_text("import azure.functions as func\nshared = func.FunctionApp()\n")
    (tmp_path / "function_app.py").write_text("from apps_mod import shared\n")
    assert type(load_function_app(tmp_path)).__name__ == "FunctionApp"


def test_none_is_one_clear_error(tmp_path: Path) -> None:
    # A Blueprint is not a FunctionRegister: an app of Blueprints only has no function app.
    (tmp_path / "function_app.py").write_text("import azure.durable_functions as df\nbp = df.Blueprint()\n")
    with pytest.raises(AppLoadError) as err:
        load_function_app(tmp_path)
    assert str(err.value) == (
        "function_app.py defines no function app: the worker needs one top-level "
        "func.FunctionApp / df.DFApp instance (any variable name)"
    )


def test_several_is_one_clear_error(tmp_path: Path) -> None:
    write_app(tmp_path, "myApp = df.DFApp()\nother = func.FunctionApp()")
    with pytest.raises(AppLoadError) as err:
        load_function_app(tmp_path)
    assert "defines more than one function app: myApp (DFApp), other (FunctionApp)" in str(err.value)


def test_one_instance_under_two_names_is_several_as_in_the_worker(tmp_path: Path) -> None:
    # loader.py 249-256 keeps the first match and raises on any further one, without an identity check.
    write_app(tmp_path, "myApp = app = df.DFApp()")
    with pytest.raises(AppLoadError, match="more than one function app: myApp \\(DFApp\\), app \\(DFApp\\)"):
        load_function_app(tmp_path)


def test_explicit_attribute_and_import_errors(tmp_path: Path) -> None:
    write_app(tmp_path, "myApp = df.DFApp()\nother = func.FunctionApp()")
    assert type(load_function_app(tmp_path, "function_app:other")).__name__ == "FunctionApp"
    with pytest.raises(AppLoadError, match="has no attribute 'nope'"):
        load_function_app(tmp_path, "function_app:nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AppLoadError, match="no function_app.py in"):
        load_function_app(tmp_path / "empty")
    (tmp_path / "function_app.py").write_text("import json\n\nraise RuntimeError('boom')\n")
    with pytest.raises(AppLoadError) as err:
        load_function_app(tmp_path)
    assert str(err.value) == "function_app.py failed to import: RuntimeError: boom (function_app.py:3)"


# ------------------------------------------------------------------ devhost start, as a user runs it
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: Path, cwd: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "PYTEST_CURRENT_TEST")}
    env.update(DEVHOST_STORE="memory", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--port", str(port), "--script-root", str(root)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # devhost processes
def test_start_any_name_foreign_cwd_and_storage_provider_notice(tmp_path: Path) -> None:
    """`devhost start` from a folder whose host.json the SDK cannot parse (the SDK reads the *current*
    folder's host.json at import) serves an app named `myApp`, and says in one line that the
    host.json's Durable Task Scheduler is not emulated."""
    root = write_app(tmp_path / "app", "myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)")
    (root / "host.json").write_text(
        '{"version": "2.0", "extensions": {"durableTask": {"storageProvider": '
        '{"type": "azureManaged", "connectionStringName": "DTS"}}}}'
    )
    (tmp_path / "host.json").write_text("{ // the Functions host allows comments, json.loads does not\n}")
    port = _free_port()
    proc = _start(root, tmp_path, port)
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/hello", timeout=2) as resp:
                    body = resp.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert body == b"hi", proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    notices = [line for line in out.splitlines() if "storageProvider" in line]
    assert len(notices) == 1, out
    assert (
        "host.json asks for storageProvider type 'azureManaged' (the Durable Task Scheduler), which devhost "
        "does not emulate; this run keeps the task hub in memory (DEVHOST_STORE=memory) instead"
    ) in notices[0]
    assert "Traceback" not in out + err


@pytest.mark.slow  # a devhost process
def test_start_with_host_json_the_sdk_rejects_is_one_line(tmp_path: Path) -> None:
    """A UTF-8 BOM: the Functions host reads it, the SDK's import-time check (`json.loads` of the text,
    azure/durable_functions/__init__.py `validate_extension_bundles`) raises, so the worker fails to
    index the app on Azure too. devhost says so in one line."""
    root = write_app(tmp_path, "myApp = df.DFApp()")
    (root / "host.json").write_text('{"version": "2.0"}', encoding="utf-8-sig")
    proc = _start(root, PROJECT_ROOT, _free_port())
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        "devhost: error: host.json: azure-functions-durable cannot read it "
        "(JSONDecodeError: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0))"
    ]
