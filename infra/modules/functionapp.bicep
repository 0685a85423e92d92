// Flex Consumption (FC1) plan and the function app. The runtime (python 3.11) lives in
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION are not
// app settings on this plan. Every connection is identity-based through the one
// user-assigned identity; no connection string or key appears here.
param planName string
param appName string
param location string
param tags object
param identityName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param serviceBusFullyQualifiedNamespace string
param keyVaultName string

@description('Durable task hub name (host.json durableTask.hubName is %TASK_HUB_NAME%).')
param taskHubName string
@description('Name of the Key Vault secret that holds the targets\' API key.')
param targetApiKeySecretName string
@description('Base URL of the targets\' update API.')
param targetsBaseUrl string
param reportsContainerName string
param retentionDays int
@description('NCRONTAB schedule of the report retention timer.')
param retentionSchedule string
@description('Memory per instance; 2048 suits most apps, 4096 for heavy or highly concurrent work.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@description('Scale-out ceiling per function group; the platform validates the allowed range.')
param maximumInstanceCount int = 100
@allowed(['AzureStorage', 'DurableTaskScheduler'])
@description('Durable Functions backend (main.bicep durableBackend).')
param durableBackend string = 'AzureStorage'
@description('Durable Task Scheduler endpoint (durableBackend DurableTaskScheduler only).')
param durableTaskSchedulerEndpoint string = ''

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The app settings every backend gets. tests/infra/test_settings_drift.py checks these names
// against update_service/settings.py, host.json and local.settings.json.
var commonAppSettings = [
  // Functions host + Durable task hub storage, identity-based. The service URIs come
  // from the account itself (primaryEndpoints), so they carry the right DNS suffix in
  // every Azure cloud, as in Microsoft's Flex quickstarts.
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  // Service Bus trigger connection (prefix ServiceBusConnection), identity-based.
  {
    name: 'ServiceBusConnection__fullyQualifiedNamespace'
    value: serviceBusFullyQualifiedNamespace
  }
  {
    name: 'ServiceBusConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'ServiceBusConnection__clientId'
    value: identity.properties.clientId
  }
  // Telemetry: the connection string is not a secret once local auth is disabled;
  // ingestion is authorized by the identity named in the authentication string.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  // The form Microsoft documents for a user-assigned identity (Microsoft Entra
  // authentication for Application Insights): Authorization=AAD;ClientId=<client id>.
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD;ClientId=${identity.properties.clientId}'
  }
  // The Python worker also exports its own telemetry (the app's outgoing HTTP and Azure SDK
  // calls, its logs) by calling configure_azure_monitor() from the azure-monitor-opentelemetry
  // distro pinned in requirements.txt; tests keep the two in step (Tracing in infra/README.md).
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
    value: 'true'
  }
  // Settings the app reads (update_service/settings.py).
  {
    name: 'TASK_HUB_NAME'
    value: taskHubName
  }
  {
    name: 'KEY_VAULT_URL'
    value: vault.properties.vaultUri
  }
  {
    name: 'TARGET_API_KEY_SECRET_NAME'
    value: targetApiKeySecretName
  }
  {
    name: 'TARGETS_BASE_URL'
    value: targetsBaseUrl
  }
  {
    name: 'TARGET_SIMULATOR_ENABLED'
    value: 'false'
  }
  {
    name: 'REPORTS_CONTAINER'
    value: reportsContainerName
  }
  {
    name: 'RETENTION_DAYS'
    value: string(retentionDays)
  }
  {
    name: 'RETENTION_SCHEDULE'
    value: retentionSchedule
  }
  {
    name: 'TARGET_RETRY_INTERVAL_SECONDS'
    value: '5'
  }
  // DefaultAzureCredential in the app code (Key Vault, report blobs) picks the
  // user-assigned identity from this variable.
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
]

// Per Durable backend. host.json is written for Azure Storage; for the Durable Task
// Scheduler these settings override its durableTask.storageProvider (an app setting
// AzureFunctionsJobHost__a__b overrides host.json's a.b), so the code and host.json stay
// the same for both. The connection authenticates as the user-assigned identity, which
// holds Durable Task Data Contributor on the task hub (roles.bicep).
var durableBackendAppSettings = {
  AzureStorage: []
  DurableTaskScheduler: [
    {
      name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type'
      value: 'azureManaged'
    }
    {
      name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName'
      value: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    }
    {
      name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
      value: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}'
    }
  ]
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions and forces at least two always-ready instances per group; opt in with properties.zoneRedundant where the region supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux is the only OS Flex Consumption runs on.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The HTTP starter and Durable status endpoints are the service's public API (guarded by function keys); there is no VNet here. Add a private endpoint (Flex supports it) to make it internal.
  // checkov:skip=CKV_AZURE_17: Callers authenticate with function keys, not mutual TLS; requiring client certificates would reject every HTTP caller (starter, Durable status URLs) that has none.
  // checkov:skip=CKV_AZURE_212: siteConfig.numberOfWorkers does not apply to Flex Consumption; instances come from scaleAndConcurrency (alwaysReady keeps one durable instance warm).
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the App Service health check (healthCheckPath); the platform manages instance health.
  // checkov:skip=CKV_AZURE_67: siteConfig.http20Enabled is an App Service front-end setting that no Flex Consumption reference sets and the Flex portal hides; tests/infra/test_flex_site_config.py keeps it out of this Flex app.
  // checkov:skip=CKV_AZURE_18: Same property as CKV_AZURE_67 (web-app variant of the check): http20Enabled is not set on a Flex Consumption app.
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP/FTPS endpoint and rejects siteConfig.ftpsState with ARM error 51021 (Azure/azure-cli#31414), so FTP cannot be configured, only is absent.
  name: appName
  location: location
  // azd finds the host of service `api` (azure.yaml) by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Flex Consumption rejects most App Service siteConfig properties (ARM error 51021,
    // e.g. ftpsState, use32BitWorkerProcess, linuxFxVersion) and ignores the rest; runtime
    // and scale live in functionAppConfig. Only minTlsVersion and appSettings are set here,
    // as in Microsoft's Flex samples. tests/infra/test_flex_site_config.py enforces it.
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: concat(commonAppSettings, durableBackendAppSettings[durableBackend])
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // One warm instance for the Durable group (orchestrator, activity and entity
        // triggers), so a queued orchestration does not wait for a cold start.
        alwaysReady: [
          {
            name: 'durable'
            instanceCount: 1
          }
        ]
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
