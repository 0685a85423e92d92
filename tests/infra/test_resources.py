"""Resources, API versions and the security properties the issue asks for."""

from __future__ import annotations

import re

from tests.infra.infra_files import (
    MAIN,
    all_bicep_paths,
    bicep,
    expr_text,
    function_app,
    function_app_settings,
    module_params,
    one_resource,
)
from update_service import settings

# Every resource type the template creates, and where.
CREATED = {
    "Microsoft.Resources/resourceGroups": MAIN,
    "Microsoft.ManagedIdentity/userAssignedIdentities": "modules/identity.bicep",
    "Microsoft.Storage/storageAccounts": "modules/storage.bicep",
    "Microsoft.Storage/storageAccounts/blobServices": "modules/storage.bicep",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "modules/storage.bicep",
    "Microsoft.OperationalInsights/workspaces": "modules/monitoring.bicep",
    "Microsoft.Insights/components": "modules/monitoring.bicep",
    "Microsoft.ServiceBus/namespaces": "modules/servicebus.bicep",
    "Microsoft.ServiceBus/namespaces/queues": "modules/servicebus.bicep",
    "Microsoft.KeyVault/vaults": "modules/keyvault.bicep",
    "Microsoft.Web/serverfarms": "modules/functionapp.bicep",
    "Microsoft.Web/sites": "modules/functionapp.bicep",
    "Microsoft.Authorization/roleAssignments": "modules/roles.bicep",
    "Microsoft.DurableTask/schedulers": "modules/durabletask.bicep",
    "Microsoft.DurableTask/schedulers/taskHubs": "modules/durabletask.bicep",
}


def test_resource_types_and_ga_api_versions() -> None:
    created: dict[str, set[str]] = {}
    for path in all_bicep_paths():
        for resource in bicep(path).resources.values():
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource.api_version), (
                f"{path}: {resource.type}@{resource.api_version} is not a GA API version"
            )
            if not resource.existing:
                created.setdefault(resource.type, set()).add(path)
    assert created == {type_: {path} for type_, path in CREATED.items()}


def test_storage_account_accepts_entra_id_only() -> None:
    storage = one_resource("modules/storage.bicep", "Microsoft.Storage/storageAccounts").body
    props = storage["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert storage["kind"] == "StorageV2"


def test_deployment_and_reports_containers() -> None:
    containers = bicep("modules/storage.bicep").resources_of_type(
        "Microsoft.Storage/storageAccounts/blobServices/containers"
    )
    names = {expr_text(c.body["name"]) for c in containers}
    assert names == {"deploymentContainerName", "reportsContainerName"}
    assert all(c.body["properties"]["publicAccess"] == "None" for c in containers)

    main_vars = bicep(MAIN).variables
    storage_params, app_params = module_params("storage"), module_params("functionApp")
    # The same container the storage module creates is the one Flex deploys from ...
    assert expr_text(storage_params["deploymentContainerName"]) == "deploymentContainerName"
    assert expr_text(app_params["deploymentContainerName"]) == "deploymentContainerName"
    deployment = function_app().body["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert "${deploymentContainerName}" in expr_text(deployment["value"])
    # ... and the reports container is the one the app writes to (its default name, too).
    assert expr_text(storage_params["reportsContainerName"]) == "reportsContainerName"
    assert expr_text(app_params["reportsContainerName"]) == "reportsContainerName"
    assert main_vars["reportsContainerName"] == settings.Settings.from_env({}).reports_container


def test_monitoring_has_local_auth_disabled() -> None:
    insights = one_resource("modules/monitoring.bicep", "Microsoft.Insights/components").body["properties"]
    assert insights["DisableLocalAuth"] is True
    assert expr_text(insights["WorkspaceResourceId"]) == "logAnalytics.id"


def test_service_bus_queue() -> None:
    namespace = one_resource("modules/servicebus.bicep", "Microsoft.ServiceBus/namespaces").body["properties"]
    assert namespace["disableLocalAuth"] is True
    assert namespace["minimumTlsVersion"] == "1.2"
    queue = one_resource("modules/servicebus.bicep", "Microsoft.ServiceBus/namespaces/queues").body
    assert queue["properties"]["deadLetteringOnMessageExpiration"] is True
    assert expr_text(queue["properties"]["maxDeliveryCount"]) == "maxDeliveryCount"
    assert expr_text(queue["name"]) == "queueName"
    passed = module_params("serviceBus")
    assert 1 <= passed["maxDeliveryCount"] <= 10
    # The queue is the one the app's Service Bus trigger listens on.
    assert bicep(MAIN).variables[expr_text(passed["queueName"])] == settings.UPDATE_REQUESTS_QUEUE


def test_key_vault_is_rbac_only_with_purge_protection() -> None:
    vault = one_resource("modules/keyvault.bicep", "Microsoft.KeyVault/vaults").body["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert 7 <= vault["softDeleteRetentionInDays"] <= 90
    assert "accessPolicies" not in vault


def test_flex_consumption_plan_and_app() -> None:
    plan = one_resource("modules/functionapp.bicep", "Microsoft.Web/serverfarms").body
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True

    app = function_app().body
    assert app["kind"] == "functionapp,linux"
    assert app["identity"]["type"] == "UserAssigned"
    assert list(app["identity"]["userAssignedIdentities"]) == ["'${identity.id}'"]
    props = app["properties"]
    assert expr_text(props["serverFarmId"]) == "plan.id"
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    deployment = config["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert expr_text(deployment["authentication"]["userAssignedIdentityResourceId"]) == "identity.id"
    scale = config["scaleAndConcurrency"]
    assert {"name": "durable", "instanceCount": 1} in scale["alwaysReady"]
    memory = bicep("modules/functionapp.bicep").params["instanceMemoryMB"]
    assert expr_text(scale["instanceMemoryMB"]) == "instanceMemoryMB" and memory.default in (2048, 4096)


def test_identity_based_settings_point_at_the_user_assigned_identity() -> None:
    app_settings = function_app_settings()
    for connection in settings.CONNECTION_NAMES:
        assert app_settings[f"{connection}__credential"] == "managedidentity"
        assert expr_text(app_settings[f"{connection}__clientId"]) == "identity.properties.clientId"
    # Service URIs straight from the account (right DNS suffix in every cloud), never an
    # account name that code would have to turn into a *.core.windows.net host.
    for service in ("blob", "queue", "table"):
        setting = app_settings[f"AzureWebJobsStorage__{service}ServiceUri"]
        assert expr_text(setting) == f"storage.properties.primaryEndpoints.{service}"
    assert "AzureWebJobsStorage__accountName" not in app_settings
    assert expr_text(app_settings["ServiceBusConnection__fullyQualifiedNamespace"]) == (
        "serviceBusFullyQualifiedNamespace"
    )
    assert expr_text(app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]) == (
        "'Authorization=AAD;ClientId=${identity.properties.clientId}'"
    )
    assert expr_text(app_settings["KEY_VAULT_URL"]) == "vault.properties.vaultUri"
    assert app_settings["TARGET_SIMULATOR_ENABLED"] == "false"


def test_flex_consumption_runtime_is_not_an_app_setting() -> None:
    # Flex Consumption rejects these: the runtime is functionAppConfig.runtime, and there
    # is no content file share. A plain AzureWebJobsStorage would be a connection string.
    forbidden = {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_RUN_FROM_PACKAGE",
        settings.STORAGE_CONNECTION,
    }
    assert forbidden.isdisjoint(function_app_settings())
