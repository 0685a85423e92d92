"""azure-functions-durable-python's samples-v2, unchanged, on `devhost start` over HTTP.

Each checks the outcome the sample's README / tests state. Apps come from the 1.7.0 sdist on PyPI
(sources.py); their variable is `myApp` in most (the worker takes any name: test_loader.py)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import Devhost, http

CITIES = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
AppDir = Callable[[str], Path]


def start_and_wait(host: Devhost, url: str, method: str = "GET", body: object = None) -> dict[str, object]:
    started = http(method, url, body)
    assert started.status == 202, started.text
    return host.wait_status(started.json()["statusQueryGetUri"])


def test_function_chaining(microsoft_app: AppDir, tmp_path: Path) -> None:
    host = Devhost(microsoft_app("function_chaining"), tmp_path).wait_ready()
    try:
        started = http("GET", f"{host.base}/api/orchestrators/my_orchestrator")
        assert started.status == 202, started.text
        links = started.json()
        done = host.wait_status(links["statusQueryGetUri"])
        assert (done["runtimeStatus"], done["output"]) == ("Completed", CITIES)
        assert f"Started orchestration with ID = '{links['id']}'." in host.log()  # the starter's own log line
    finally:
        host.stop()


def test_blueprint(microsoft_app: AppDir, tmp_path: Path) -> None:
    """A df.Blueprint registered on a func.FunctionApp: its durable functions and the app's own HTTP one."""
    host = Devhost(microsoft_app("blueprint"), tmp_path).wait_ready()
    try:
        done = start_and_wait(host, f"{host.base}/api/startOrchestrator")
        assert (done["runtimeStatus"], done["output"]) == ("Completed", CITIES)
        hello = http("GET", f"{host.base}/api/HttpTrigger?name=devhost")
        assert (hello.status, hello.text) == (
            200,
            "Hello, devhost. This HTTP triggered function executed successfully.",
        )
        by_body = http("POST", f"{host.base}/api/HttpTrigger", {"name": "body"})
        assert by_body.text.startswith("Hello, body.")
        anonymous = http("GET", f"{host.base}/api/HttpTrigger")
        assert anonymous.status == 200 and "Pass a name in the query string" in anonymous.text
    finally:
        host.stop()


@pytest.mark.azurite
def test_fan_in_fan_out_backs_up_files_to_blob_storage(
    microsoft_app: AppDir, tmp_path: Path, azurite_connection_string: str
) -> None:
    """E2_BackupSiteContent copies every `__init__.py` / `function.json` under folders named `E2_*` to the
    `backups` container and returns the byte total (README; tests/test_E2_BackupSiteContent.py). The
    blobs go to Azurite (AzureWebJobsStorage); the task hub stays in memory (DEVHOST_STORE=memory)."""
    from azure.storage.blob import BlobServiceClient

    site = tmp_path / "site"
    files = {
        "E2_GetFileList/__init__.py": "x" * 120,
        "E2_GetFileList/function.json": "{}",
        "E2_CopyFileToBlob/__init__.py": "y" * 3000,
        "E2_CopyFileToBlob/function.json": '{"a": 1}',
        "E2_CopyFileToBlob/notes.txt": "not copied",
        "shared/__init__.py": "not under E2_",
    }
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    copied = {rel: text for rel, text in files.items() if rel.startswith("E2_") and not rel.endswith(".txt")}

    host = Devhost(
        microsoft_app("fan_in_fan_out"), tmp_path, AzureWebJobsStorage=azurite_connection_string
    ).wait_ready()
    try:
        done = start_and_wait(host, f"{host.base}/api/orchestrators/E2_BackupSiteContent", "POST", str(site))
        assert (done["runtimeStatus"], done["output"]) == ("Completed", sum(len(t) for t in copied.values()))
        container = BlobServiceClient.from_connection_string(azurite_connection_string).get_container_client("backups")
        blobs = {b.name: b.size for b in container.list_blobs()}
        for rel, text in copied.items():
            assert blobs[rel.replace("/", "_")] == len(text)

        failed = start_and_wait(host, f"{host.base}/api/orchestrators/E2_BackupSiteContent", "POST", "")
        assert failed["runtimeStatus"] == "Failed"
        assert "A directory path is required as input" in str(failed["output"])
    finally:
        host.stop()


def test_orchestration_versioning(microsoft_app: AppDir, tmp_path: Path) -> None:
    """README: with defaultVersion 1.0 the orchestrator takes the legacy path (activity_a); `?version=`
    overrides it; an explicit sub-orchestration version wins, otherwise the sub-orchestration gets
    the current defaultVersion. A version newer than the host's defaultVersion waits (Pending) under the
    default versionMatchStrategy CurrentOrOlder + versionFailureStrategy Reject: DTFx
    TaskOrchestrationDispatcher.cs 410-432 abandons its work items (see tests/test_versioning.py)."""
    host = Devhost(microsoft_app("orchestration_versioning"), tmp_path).wait_ready()
    try:
        newer = http("GET", f"{host.base}/api/orchestrators/my_orchestrator?version=2.0")
        assert newer.status == 202, newer.text
        for query, version, activity in (("", "1.0", "Hello from A!"), ("?version=0.5", "0.5", "Hello from B!")):
            started = http("GET", f"{host.base}/api/orchestrators/my_orchestrator{query}")
            assert started.status == 202, started.text
            links = started.json()
            host.wait_status(links["statusQueryGetUri"], {"Running"}, custom_status="Waiting for Continue event...")
            raised = http("POST", links["sendEventPostUri"].replace("{eventName}", "Continue"), "go")
            assert raised.status == 202, raised.text
            done = host.wait_status(links["statusQueryGetUri"])
            assert (done["runtimeStatus"], done["output"]) == (
                "Completed",
                [
                    f"Orchestration version: {version}",
                    "Suborchestration version (explicit): 0.9",
                    "Suborchestration version (default): 1.0",
                    activity,
                ],
            )
        waiting = http("GET", newer.json()["statusQueryGetUri"])
        assert waiting.json()["runtimeStatus"] == "Pending"  # a 2.0 instance never ran on this 1.0 host
    finally:
        host.stop()


@pytest.mark.azurite
@pytest.mark.slow  # two host starts on Azurite (~10 s)
def test_orchestration_versioning_survives_an_upgrade(
    microsoft_app: AppDir, tmp_path: Path, azurite_connection_string: str
) -> None:
    """README steps 1-7: start on 1.0, stop while it waits, set defaultVersion 2.0, restart, raise the
    event: the instance keeps version 1.0 and its path; the sub-orchestration created after the
    upgrade gets 2.0."""
    root = microsoft_app("orchestration_versioning")
    env = {"DEVHOST_STORE": "azure", "AzureWebJobsStorage": azurite_connection_string, "DEVHOST_LEASE_SECONDS": "15"}
    host = Devhost(root, tmp_path, **env).wait_ready()
    try:
        started = http("GET", f"{host.base}/api/orchestrators/my_orchestrator")
        links = started.json()
        host.wait_status(links["statusQueryGetUri"], {"Running"}, custom_status="Waiting for Continue event...")
    finally:
        host.stop()
    host_json = root / "host.json"
    host_json.write_text(host_json.read_text().replace('"defaultVersion": "1.0"', '"defaultVersion": "2.0"'))
    host = Devhost(root, tmp_path, **env).wait_ready()
    try:
        status_url = f"{host.instance_url(links['id'])}"
        raised = http("POST", f"{status_url}/raiseEvent/Continue", "go")
        assert raised.status == 202, raised.text
        done = host.wait_status(status_url)
        assert done["output"] == [
            "Orchestration version: 1.0",
            "Suborchestration version (explicit): 0.9",
            "Suborchestration version (default): 2.0",
            "Hello from A!",
        ]
    finally:
        host.stop()


def test_openai_agents_runs_up_to_its_boundary(microsoft_app: AppDir, tmp_path: Path) -> None:
    """The sample asks for the Durable Task Scheduler (`azureManaged`): devhost says in one line that it
    keeps the hub in memory instead. Set up as its docs say (local.settings.json from the template; its
    host.json reads %TASKHUB_NAME%, which the template names TASKHUB).

    With openai-agents importable (not installed by requirements-dev: it brings ~64 MB with mcp,
    starlette, uvicorn, ...; e.g. `pip install --target DIR openai-agents==0.3.0 openai==1.107.3` and
    PYTHONPATH=DIR), `hello_world` runs `Runner.run_sync` in its orchestrator (on a worker thread, as the
    worker runs it: before, "This event loop is already running") and reaches the model-call activity,
    which stops where Azure OpenAI needs a credential: the boundary."""
    root = microsoft_app("openai_agents")
    shutil.copy(root / "local.settings.json.template", root / "local.settings.json")
    host = Devhost(root, tmp_path, TASKHUB_NAME="default", AZURE_OPENAI_ENDPOINT="http://127.0.0.1:9/")
    notice = (
        "host.json asks for storageProvider type 'azureManaged' (the Durable Task Scheduler), which "
        "devhost does not emulate; this run keeps the task hub in memory"
    )
    try:
        if importlib.util.find_spec("agents") is None:
            assert host.wait_exit() == 1
            lines = host.log().splitlines()
            assert any(notice in line for line in lines)
            assert lines[-1].startswith(
                "devhost: error: function_app.py failed to import: ModuleNotFoundError: No module named "
            ), lines[-1]
            assert "Traceback" not in host.log()
            pytest.skip(
                "openai-agents 0.3.0 (with openai, mcp, starlette, uvicorn, ...) is not small and is not "
                "installed: the orchestration part of this sample is not run"
            )
        host.wait_ready()
        assert any(notice in line for line in host.log().splitlines())
        started = http("POST", f"{host.base}/api/orchestrators/hello_world")
        assert started.status == 202, started.text
        done = host.wait_status(started.json()["statusQueryGetUri"], timeout=60)  # the model call is retried
        assert done["runtimeStatus"] == "Failed"
        assert done["output"].startswith(
            "Orchestrator function 'hello_world' failed: Activity function 'run_model' "
            "failed: ClientAuthenticationError: DefaultAzureCredential failed"
        )
        assert "This event loop is already running" not in host.log()
    finally:
        host.stop()


def test_simple_sub_orchestration(microsoft_app: AppDir, tmp_path: Path) -> None:
    """README: GET /api/orchestrators/orchestrator runs `sub_orchestrator`, which says hello to Seattle."""
    host = Devhost(microsoft_app("simple_sub_orchestration"), tmp_path).wait_ready()
    try:
        done = start_and_wait(host, f"{host.base}/api/orchestrators/orchestrator")
        assert (done["runtimeStatus"], done["output"]) == ("Completed", "Hello Seattle")
    finally:
        host.stop()


def test_serialize_arguments(microsoft_app: AppDir, tmp_path: Path) -> None:
    """A custom class with to_json/from_json as client input and activity input: the orchestrator reads the
    number inside the SerializableClass its starter passed (5) and returns it."""
    host = Devhost(microsoft_app("serialize_arguments"), tmp_path).wait_ready()
    try:
        done = start_and_wait(host, f"{host.base}/api/orchestrators/orchestrator")
        assert (done["runtimeStatus"], done["output"]) == ("Completed", 5)
    finally:
        host.stop()
