"""Every setting the app reads is configured in Azure (Bicep) and locally, and back.

"Read by the app" means: update_service.settings.APP_SETTING_NAMES, the connection
prefixes in update_service.settings.CONNECTION_NAMES (trigger bindings resolve
`<prefix>__...` identity-based settings), and `%NAME%` references in host.json and in
the app's binding code. Rename a setting on one side only and a test here fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.infra_files import (
    DURABLE_BACKENDS,
    HOST_OVERRIDE_PREFIX,
    REPO,
    effective_host_setting,
    function_app_settings,
    load_json,
)
from update_service import settings

# Settings the *platform or SDKs* read, not the app code. Each needs a reason.
PLATFORM_SETTINGS = {
    # Functions host: where to send telemetry ...
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    # ... and to authenticate as the user-assigned identity (Application Insights has local auth off).
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # azure-identity's DefaultAzureCredential: which user-assigned identity to use in app code.
    "AZURE_CLIENT_ID",
    # Python worker: export the worker's OpenTelemetry logs/traces via azure-monitor-opentelemetry.
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
}

# Properties of an identity-based connection the Functions host understands
# (https://learn.microsoft.com/azure/azure-functions/functions-reference#configure-an-identity-based-connection).
IDENTITY_CONNECTION_PROPERTIES = {
    "accountName",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "fullyQualifiedNamespace",
    "credential",
    "clientId",
}
# The properties that name the service endpoints, per connection. Storage needs all three
# services (Durable's Azure Storage provider uses queues and tables, the host and the reports
# blobs), each as a full URI so no code derives an endpoint from an account name.
ENDPOINT_PROPERTIES = {
    settings.STORAGE_CONNECTION: {"blobServiceUri", "queueServiceUri", "tableServiceUri"},
    settings.SERVICE_BUS_CONNECTION: {"fullyQualifiedNamespace"},
}

# host.json values an app setting may override (AzureFunctionsJobHost__<path>), and why:
# the Durable Task Scheduler backend switches the storage provider without touching
# host.json (functionapp.bicep durableBackendAppSettings).
HOST_JSON_OVERRIDES = {
    "extensions__durableTask__storageProvider__type",
    "extensions__durableTask__storageProvider__connectionStringName",
}

# Code that is not the deployed app (devhost, tests, tooling).
NOT_APP_CODE = {"tools", "docs", "tests", "bench", "scripts", "infra", "node_modules"}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def host_json_references() -> set[str]:
    return {m for s in _strings(load_json(REPO / "host.json")) for m in re.findall(r"%([A-Za-z_]\w*)%", s)}


def _app_python_files() -> Iterator[Path]:
    for top in REPO.iterdir():
        if top.name in NOT_APP_CODE or top.name.startswith("."):
            continue
        if top.suffix == ".py":
            yield top
        elif top.is_dir():
            yield from top.rglob("*.py")


def binding_references() -> set[str]:
    """`"%NAME%"` string literals in app code, e.g. schedule="%RETENTION_SCHEDULE%"."""
    found: set[str] = set()
    for path in _app_python_files():
        found |= set(re.findall(r"""["']%([A-Za-z_]\w*)%["']""", path.read_text(encoding="utf-8")))
    return found


def names_the_app_reads() -> set[str]:
    return set(settings.APP_SETTING_NAMES) | host_json_references() | binding_references()


def names_the_host_reads(app_settings: dict[str, Any]) -> set[str]:
    """Settings the effective host config names, e.g. storageProvider.connectionStringName."""
    name = effective_host_setting("extensions.durableTask.storageProvider.connectionStringName", app_settings)
    return {name} if isinstance(name, str) else set()


def _connection_settings(names: set[str], connection: str) -> set[str]:
    return {name for name in names if name.startswith(f"{connection}__")}


def test_the_contract_is_not_empty() -> None:
    assert "TASK_HUB_NAME" in host_json_references()
    assert set(settings.CONNECTION_NAMES) == set(ENDPOINT_PROPERTIES)
    assert PLATFORM_SETTINGS.isdisjoint(names_the_app_reads())


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_bicep_provides_every_setting_the_app_reads(backend: str) -> None:
    app_settings = function_app_settings(backend)
    missing = (names_the_app_reads() | names_the_host_reads(app_settings)) - set(app_settings)
    assert not missing, f"read by the app but not set in infra/modules/functionapp.bicep: {sorted(missing)}"


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_bicep_provides_every_connection_identity_based(backend: str) -> None:
    app_settings = set(function_app_settings(backend))
    for connection in settings.CONNECTION_NAMES:
        properties = {name.split("__", 1)[1] for name in _connection_settings(app_settings, connection)}
        missing = ENDPOINT_PROPERTIES[connection] - properties
        assert not missing, f"{connection} has no identity-based endpoint setting {sorted(missing)}"
        assert {"credential", "clientId"} <= properties, f"{connection} must name the user-assigned identity"
        assert connection not in app_settings, f"{connection} must not be a connection string in Azure"


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_every_bicep_setting_is_read_or_allow_listed(backend: str) -> None:
    app_settings = function_app_settings(backend)
    reads = names_the_app_reads() | names_the_host_reads(app_settings)
    unexplained = []
    for name in app_settings:
        prefix, _, prop = name.partition("__")
        if name in reads or name in PLATFORM_SETTINGS:
            continue
        if name.startswith(HOST_OVERRIDE_PREFIX) and name[len(HOST_OVERRIDE_PREFIX) :] in HOST_JSON_OVERRIDES:
            continue
        if prefix in settings.CONNECTION_NAMES and prop in IDENTITY_CONNECTION_PROPERTIES:
            continue
        unexplained.append(name)
    assert not unexplained, f"set in Bicep but read by nothing (stale or misspelled?): {unexplained}"


def test_local_settings_provide_every_setting_the_app_reads() -> None:
    local = set(load_json(REPO / "local.settings.json")["Values"])
    missing = names_the_app_reads() - local
    assert not missing, f"read by the app but missing from local.settings.json Values: {sorted(missing)}"
    for connection in settings.CONNECTION_NAMES:
        # Either a connection string (Azurite) or the identity-based endpoint property.
        assert connection in local or all(f"{connection}__{p}" in local for p in ENDPOINT_PROPERTIES[connection]), (
            connection
        )
