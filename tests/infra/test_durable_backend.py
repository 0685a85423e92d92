"""durableBackend: AzureStorage (default) or DurableTaskScheduler, end to end in the Bicep.

One parameter must switch everything that depends on the backend, and nothing else:
the scheduler and task hub exist only for DurableTaskScheduler, the app reaches them
through app settings that override host.json (the code and host.json are the same for
both), and the task hub is the one TASK_HUB_NAME names. Roles: tests/infra/test_roles.py.
Sources: learn.microsoft.com/azure/durable-task/scheduler/quickstart-durable-task-scheduler
(host.json storageProvider, bundle 4.32.0+) and .../durable-task-scheduler-identity
(connection string, Durable Task Data Contributor).
"""

from __future__ import annotations

import re

import pytest

from tests.infra.infra_files import (
    DURABLE_BACKENDS,
    INFRA,
    MAIN,
    bicep,
    effective_host_setting,
    expr_text,
    function_app_settings,
    host_json,
    load_json,
    module_params,
    one_resource,
)

DTS = "modules/durabletask.bicep"
STORAGE_PROVIDER = "extensions.durableTask.storageProvider"


def _allowed(decorators: list[str]) -> set[str]:
    (allowed,) = [d for d in decorators if d.startswith("@allowed(")]
    return set(re.findall(r"'([^']+)'", allowed))


def test_one_parameter_with_the_two_backends_everywhere() -> None:
    main_param = bicep(MAIN).params["durableBackend"]
    assert main_param.default == "AzureStorage"
    assert _allowed(main_param.decorators) == set(DURABLE_BACKENDS)
    app_param = bicep("modules/functionapp.bicep").params["durableBackend"]
    assert _allowed(app_param.decorators) == set(DURABLE_BACKENDS)
    assert expr_text(module_params("functionApp")["durableBackend"]) == "durableBackend"
    assert expr_text(bicep(MAIN).variables["useDurableTaskScheduler"]) == "durableBackend == 'DurableTaskScheduler'"
    # azd: `azd env set DURABLE_BACKEND DurableTaskScheduler` before `azd provision`.
    parameters = load_json(INFRA / "main.parameters.json")["parameters"]
    assert parameters["durableBackend"]["value"] == "${DURABLE_BACKEND=AzureStorage}"


def test_the_scheduler_and_task_hub_exist_only_for_that_backend() -> None:
    module = bicep(MAIN).modules["durableTask"]
    assert module.path == DTS
    assert module.condition == "useDurableTaskScheduler"
    params = module_params("durableTask")
    # The hub the app uses is the one TASK_HUB_NAME (host.json hubName) names.
    assert expr_text(params["taskHubName"]) == "taskHubName"
    assert expr_text(module_params("functionApp")["taskHubName"]) == "taskHubName"
    assert host_json()["extensions"]["durableTask"]["hubName"] == "%TASK_HUB_NAME%"

    scheduler = one_resource(DTS, "Microsoft.DurableTask/schedulers")
    allow_list = scheduler.body["properties"]["ipAllowlist"]
    assert allow_list, "an empty ipAllowlist denies every caller"
    hub = one_resource(DTS, "Microsoft.DurableTask/schedulers/taskHubs")
    assert expr_text(hub.body["parent"]) == scheduler.symbol
    assert expr_text(hub.body["name"]) == "taskHubName"
    assert hub.api_version == scheduler.api_version
    # Every other module is unconditional: the backend switches nothing else.
    conditional = {symbol for symbol, m in bicep(MAIN).modules.items() if m.condition}
    assert conditional == {"durableTask"}


def test_the_app_gets_the_scheduler_endpoint_only_with_that_backend() -> None:
    passed = module_params("functionApp")["durableTaskSchedulerEndpoint"]
    assert expr_text(passed) == "useDurableTaskScheduler ? durableTask.outputs.endpoint : ''"
    assert "endpoint" in bicep(DTS).outputs


def test_azure_storage_backend_uses_host_json_as_written() -> None:
    app_settings = function_app_settings("AzureStorage")
    overrides = [name for name in app_settings if name.startswith("AzureFunctionsJobHost__")]
    assert overrides == []
    assert "DURABLE_TASK_SCHEDULER_CONNECTION_STRING" not in app_settings
    assert effective_host_setting(f"{STORAGE_PROVIDER}.type", app_settings) is None  # Azure Storage


def test_scheduler_backend_overrides_the_storage_provider_by_app_settings() -> None:
    app_settings = function_app_settings("DurableTaskScheduler")
    assert effective_host_setting(f"{STORAGE_PROVIDER}.type", app_settings) == "azureManaged"
    connection = effective_host_setting(f"{STORAGE_PROVIDER}.connectionStringName", app_settings)
    assert connection == "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    # Managed identity, the app's user-assigned one: no key exists for a scheduler.
    assert expr_text(app_settings[connection]) == (
        "'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;"
        "ClientID=${identity.properties.clientId}'"
    )
    # Same hub name setting, and everything the Azure Storage backend has stays.
    storage = function_app_settings("AzureStorage")
    assert {k: v for k, v in app_settings.items() if k in storage} == storage
    assert set(app_settings) - set(storage) == {
        "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type",
        "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName",
        connection,
    }


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_extension_bundle_supports_the_backend(backend: str) -> None:
    # Non-.NET apps get the Durable Task Scheduler provider from extension bundle 4.32.0 or
    # later (quickstart-durable-task-scheduler); the same range serves Azure Storage.
    bundle = host_json()["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    match = re.fullmatch(r"\[(\d+\.\d+\.\d+),\s*(\d+\.\d+\.\d+)\)", bundle["version"])
    assert match, f"bundle version {bundle['version']!r} should be a [min, max) range"
    low, high = map(_version, match.groups())
    assert low >= (4, 32, 0) and high <= (5, 0, 0)
    overrides = [n for n in function_app_settings(backend) if n.startswith("AzureFunctionsJobHost__extensionBundle")]
    assert overrides == []


def test_outputs_say_which_backend_is_deployed() -> None:
    outputs = bicep(MAIN).outputs
    assert expr_text(outputs["DURABLE_BACKEND"].value) == "durableBackend"
    assert expr_text(outputs["DURABLE_TASK_SCHEDULER_ENDPOINT"].value) == (
        "useDurableTaskScheduler ? durableTask.outputs.endpoint : ''"
    )
