"""The package `func azure functionapp publish` / `azd deploy` uploads works in Azure.

Builds the package from .funcignore exactly as Core Tools does, installs only
requirements.txt into a clean venv (as the Flex Consumption remote build does), then
imports `function_app` from the package with *only* the app settings infra/ gives the
function app (no local.settings.json, no dev packages) and indexes its functions the way
the Python worker does. A module that only exists in the dev venv, a file .funcignore
leaves out, a setting the Bicep forgot or a binding that names a missing connection all
fail here instead of after `azd up`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.package import REPO, build_package, is_ignored, package_files, parse_ignore_file, venv_python
from tests.infra.bicep_parser import Expr
from tests.infra.infra_files import DURABLE_BACKENDS, MAIN, bicep, function_app_settings
from update_service import settings

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


def _main_default(name: str) -> str:
    default = bicep(MAIN).params[name].default
    assert default is not None, f"main.bicep param {name} has no default to deploy with"
    return str(default)


# What the deployment resolves each expression in functionapp.bicep's app settings to
# (resource properties and module parameters), with realistic values. A new Expr setting
# without an entry here fails the test: add what Azure would put there.
def _deployment_values() -> dict[str, str]:
    return {
        "storage.properties.primaryEndpoints.blob": "https://stexample.blob.core.windows.net/",
        "storage.properties.primaryEndpoints.queue": "https://stexample.queue.core.windows.net/",
        "storage.properties.primaryEndpoints.table": "https://stexample.table.core.windows.net/",
        "identity.properties.clientId": CLIENT_ID,
        "serviceBusFullyQualifiedNamespace": "sb-example.servicebus.windows.net",
        "applicationInsights.properties.ConnectionString": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=https://example.in.applicationinsights.azure.com/"
        ),
        "vault.properties.vaultUri": "https://kv-example.vault.azure.net/",
        "targetsBaseUrl": "https://targets.example.com/api",
        "reportsContainerName": str(bicep(MAIN).variables["reportsContainerName"]),
        "taskHubName": _main_default("taskHubName"),
        "targetApiKeySecretName": _main_default("targetApiKeySecretName"),
        "string(retentionDays)": _main_default("retentionDays"),
        "retentionSchedule": _main_default("retentionSchedule"),
        "durableTaskSchedulerEndpoint": "https://dts-example.westus2.durabletask.io",
    }


def deployed_value(name: str, value: Any, values: dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    assert isinstance(value, Expr), f"{name}: unexpected value {value!r}"
    text = value.text
    if text in values:
        return values[text]
    interpolated = re.fullmatch(r"'(.*)'", text)
    if interpolated:
        out = interpolated.group(1)
        for atom in re.findall(r"\$\{([^}]*)\}", out):
            assert atom in values, f"{name}: no deployment value for ${{{atom}}}"
            out = out.replace("${" + atom + "}", values[atom])
        return out
    raise AssertionError(f"{name}: no deployment value for {text!r}; add it to _deployment_values()")


def app_settings_as_deployed(backend: str) -> dict[str, str]:
    values = _deployment_values()
    return {name: deployed_value(name, value, values) for name, value in function_app_settings(backend).items()}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    destination = tmp_path_factory.mktemp("package")
    build_package(destination)
    return destination


@pytest.fixture(scope="module", params=DURABLE_BACKENDS)
def indexed(package: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The app as the worker indexes it, with each durableBackend's app settings."""
    env = app_settings_as_deployed(request.param)
    env.update({"PATH": "/usr/bin:/bin", "HOME": str(package), "LANG": "C.UTF-8"})
    result = subprocess.run(
        [str(venv_python()), "-I", str(Path(__file__).with_name("index_app.py")), str(package)],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"importing function_app from the package failed:\n{result.stderr[-4000:]}"
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    data["app_settings"] = env
    return data


# ---- the package ---------------------------------------------------------------------

NEVER_DEPLOYED = [
    "local.settings.json",  # local secrets and Azurite; Azure uses app settings
    "requirements-dev.txt",
    "tests/",
    "tools/",  # devhost lives in tools/devhost
    "docs/",
    "infra/",
    "scripts/",
    "bench/",
    "node_modules/",
    ".venv/",
    ".venv-bench/",
    ".venv-infra/",
    ".python_packages/",
    ".azure/",
    ".env",
    ".git/",
    ".artifacts/",
]


@pytest.mark.parametrize("path", NEVER_DEPLOYED)
def test_funcignore_leaves_out(path: str) -> None:
    rules = parse_ignore_file((REPO / ".funcignore").read_text(encoding="utf-8"))
    is_dir = path.endswith("/")
    assert is_ignored(rules, path.rstrip("/"), is_dir=is_dir), f".funcignore must leave out {path}"


def test_ignore_rules_follow_gitignore_semantics() -> None:
    rules = parse_ignore_file("__pycache__/\n*.pyc\n.git*\n/only-root.txt\ndocs/\n")
    assert is_ignored(rules, "activities/__pycache__", is_dir=True)
    assert not is_ignored(rules, "activities/__pycache__", is_dir=False)
    assert is_ignored(rules, "a/b/c.pyc", is_dir=False)
    assert is_ignored(rules, ".gitignore", is_dir=False) and is_ignored(rules, ".github", is_dir=True)
    assert is_ignored(rules, "only-root.txt", is_dir=False)
    assert not is_ignored(rules, "sub/only-root.txt", is_dir=False)
    assert not is_ignored(rules, "docsite.py", is_dir=False)


def test_package_holds_the_app_and_nothing_dev_only() -> None:
    files = package_files()
    top = {f.split("/", 1)[0] for f in files}
    assert {"function_app.py", "host.json", "requirements.txt"} <= top
    for package_dir in ("activities", "entities", "orchestrators", "starters", "update_service", "simulator"):
        assert f"{package_dir}/__init__.py" in files or any(f.startswith(package_dir + "/") for f in files)
    leaked = [f for f in files if any(f == p or f.startswith(p) for p in NEVER_DEPLOYED)]
    assert not leaked, f"dev-only files in the deployment package: {leaked[:10]}"


def test_no_deployed_code_builds_a_public_cloud_storage_host(package: Path) -> None:
    # Endpoints come from app settings (the account's primaryEndpoints); a hard-coded
    # *.core.windows.net host breaks the app in Azure China and Azure Government.
    sources = {p.relative_to(package): p.read_text(encoding="utf-8") for p in package.rglob("*.py")}
    offenders = [str(path) for path, text in sources.items() if "core.windows.net" in text]
    assert not offenders, offenders


# ---- the app, imported from the package in the clean venv ---------------------------

EXPECTED_TRIGGERS = {
    "update_rollout": "orchestrationTrigger",
    "rollout_wave": "orchestrationTrigger",
    "apply_update": "activityTrigger",
    "check_health": "activityTrigger",
    "rollback": "activityTrigger",
    "store_report": "activityTrigger",
    "target_lock": "entityTrigger",
    "start_update": "httpTrigger",
    "get_update": "httpTrigger",
    "list_updates": "httpTrigger",
    "approve_update": "httpTrigger",
    "reject_update": "httpTrigger",
    "cancel_update": "httpTrigger",
    "start_update_from_queue": "serviceBusTrigger",
    "purge_old_history": "timerTrigger",
}


def _trigger(bindings: list[dict[str, Any]]) -> dict[str, Any]:
    triggers = [b for b in bindings if b["type"].endswith("Trigger")]
    assert len(triggers) == 1, bindings
    return triggers[0]


@pytest.mark.slow  # a clean venv (built once per requirements.txt) and two interpreter starts
def test_the_clean_venv_is_not_the_dev_venv(indexed: dict[str, Any]) -> None:
    assert Path(indexed["prefix"]).resolve() != (REPO / ".venv").resolve()
    assert ".artifacts" in indexed["prefix"]


@pytest.mark.slow  # a clean venv (built once per requirements.txt) and two interpreter starts
def test_indexed_functions_and_their_triggers(indexed: dict[str, Any]) -> None:
    functions = indexed["functions"]
    # TARGET_SIMULATOR_ENABLED is false in Azure: the simulator's functions are not deployed.
    assert {name: _trigger(b)["type"] for name, b in functions.items()} == EXPECTED_TRIGGERS


@pytest.mark.slow  # a clean venv (built once per requirements.txt) and two interpreter starts
def test_service_bus_and_timer_bindings_resolve_in_azure(indexed: dict[str, Any]) -> None:
    functions = indexed["functions"]
    queue = _trigger(functions["start_update_from_queue"])
    assert queue["connection"] == settings.SERVICE_BUS_CONNECTION
    assert queue["queueName"] == settings.UPDATE_REQUESTS_QUEUE
    assert _trigger(functions["purge_old_history"])["schedule"] == "%RETENTION_SCHEDULE%"
    routes = {_trigger(b).get("route") for b in functions.values() if _trigger(b)["type"] == "httpTrigger"}
    assert "updates" in routes and all(r is not None and r.startswith("updates") for r in routes)


@pytest.mark.slow  # a clean venv (built once per requirements.txt) and two interpreter starts
def test_every_binding_setting_is_an_app_setting(indexed: dict[str, Any]) -> None:
    deployed = indexed["app_settings"]
    for name, bindings in indexed["functions"].items():
        for binding in bindings:
            connection = binding.get("connection")
            if connection:
                # Identity-based: the host resolves <connection>__* settings.
                assert f"{connection}__credential" in deployed, f"{name}: connection {connection} is not configured"
            for value in binding.values():
                for ref in re.findall(r"%(\w+)%", value if isinstance(value, str) else ""):
                    assert ref in deployed, f"{name}: %{ref}% is not an app setting"


@pytest.mark.slow  # a clean venv (built once per requirements.txt) and two interpreter starts
def test_worker_telemetry_matches_what_is_installed(indexed: dict[str, Any]) -> None:
    telemetry = indexed["telemetry"]
    if indexed["app_settings"]["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true":
        # The worker will call the distro's configure_azure_monitor(); its exporter must
        # authenticate as the app's identity (Application Insights has local auth off).
        assert telemetry["distro"], f"azure-monitor-opentelemetry does not import: {telemetry.get('error')}"
        assert telemetry["managed_identity"] == {"client_id": CLIENT_ID}
        assert not telemetry["configured_by_app"], "function_app configures OpenTelemetry itself; the worker does"
    else:
        assert not telemetry["distro"], "the distro is deployed but the worker is not told to use it"
