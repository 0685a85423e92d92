"""devhost's public face, used as the README's "Use it on your own app" tells someone with another app to.

The README's pytest example is run as written (its conftest.py and test file, taken from README.md) in a
fresh project next to an app of its own, importing nothing but the names `devhost` lists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import devhost
from devhost import NondeterminismError, assert_replays, export_instance, serve
from tests import DEVHOST_ROOT, import_file

ORDER_APP = """
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def process_order(context):
    order = context.get_input()
    payment = yield context.call_activity("{first}", order)
    yield context.call_activity("ship", order)
    return {"id": order["id"], "payment": payment}


@app.activity_trigger(input_name="order")
def charge_card(order):
    return {"charged": False}


@app.activity_trigger(input_name="order")
def reserve_stock(order):
    return "reserved"


@app.activity_trigger(input_name="order")
def ship(order):
    return "shipped"
"""


def readme_python_blocks() -> list[str]:
    text = (DEVHOST_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it on your own app", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def write_app(root: Path, first: str = "charge_card") -> None:
    (root / "function_app.py").write_text(ORDER_APP.replace("{first}", first))
    (root / "host.json").write_text('{"version": "2.0"}')


def test_public_names_are_importable_and_documented() -> None:
    readme = (DEVHOST_ROOT / "README.md").read_text(encoding="utf-8")
    for name in devhost.__all__:
        assert getattr(devhost, name) is not None
    # The names the README's own-app section uses are public ones.
    assert {"DurableHarness", "assert_replays", "export_instance", "serve", "start_azurite"} <= set(devhost.__all__)
    assert "modules not listed there are internal" in readme.lower()


@pytest.mark.slow  # a pytest process
def test_readme_pytest_example_runs_on_another_app(tmp_path: Path) -> None:
    conftest, test_file = (block.split("\n", 1)[1] for block in readme_python_blocks()[0].split("\n\n# ", 1))
    write_app(tmp_path)
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_order.py").write_text(test_file)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_recording_and_replay_with_public_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    old_root.mkdir()
    new_root.mkdir()
    write_app(old_root)
    write_app(new_root, first="reserve_stock")  # the next release calls another activity first
    old_app, new_app = (_import(root) for root in (old_root, new_root))
    with devhost.DurableHarness(old_app) as durable:
        instance_id = durable.start("process_order", {"id": 7})
        durable.run(instance_id)
        recording = export_instance(durable.status(instance_id))
    assert assert_replays(old_app, recording).ok
    with pytest.raises(NondeterminismError) as err:
        assert_replays(new_app, recording)
    assert (
        "the recording scheduled activity 'charge_card', but the current code scheduled activity "
        "'reserve_stock'" in str(err.value)
    )


def test_serve_reports_a_missing_folder_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-app"
    assert serve(missing, port=0) == 1
    assert capsys.readouterr().err == f"devhost: error: script root {missing} is not a folder\n"


def _import(root: Path) -> object:
    return import_file(root / "function_app.py", f"order_app_{root.name}").app
