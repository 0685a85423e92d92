// Entry point for `azd provision` / `azd up`: one resource group `rg-<environment>`
// holding the update service (Flex Consumption function app) and its dependencies.
// Subscription scope so azd can create the resource group itself.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource; it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deployer (azd sets AZURE_PRINCIPAL_ID). Empty = no deployer data-plane roles.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
@description('Kind of principal principalId is (ServicePrincipal for a CI identity).')
param principalType string = 'User'

@minLength(1)
@description('Base URL of the targets\' update API (app setting TARGETS_BASE_URL).')
param targetsBaseUrl string

@minLength(3)
@maxLength(45)
@description('Durable task hub name (TASK_HUB_NAME): letters and digits, starting with a letter.')
param taskHubName string = 'UpdateHub'

@description('Key Vault secret holding the targets\' API key (TARGET_API_KEY_SECRET_NAME).')
param targetApiKeySecretName string = 'target-api-key'

@minValue(1)
param retentionDays int = 30

@description('NCRONTAB schedule of the report retention timer (RETENTION_SCHEDULE).')
param retentionSchedule string = '0 0 3 * * *'

@allowed(['AzureStorage', 'DurableTaskScheduler'])
@description('Durable Functions backend: AzureStorage (queues, tables and blobs in the app\'s storage account) or DurableTaskScheduler (a managed Microsoft.DurableTask scheduler and task hub, with its dashboard). azd: DURABLE_BACKEND. See infra/README.md.')
param durableBackend string = 'AzureStorage'

@allowed(['Consumption', 'Dedicated'])
@description('Durable Task Scheduler SKU (durableBackend DurableTaskScheduler only).')
param durableTaskSchedulerSku string = 'Consumption'

var tags = { 'azd-env-name': environmentName }
// Deterministic per subscription + environment + region, so re-provisioning updates in place.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var deploymentContainerName = 'app-package-${resourceToken}'
var reportsContainerName = 'reports'
// Must equal update_service.settings.UPDATE_REQUESTS_QUEUE (tests/infra checks it).
var updateRequestsQueueName = 'update-requests'
var useDurableTaskScheduler = durableBackend == 'DurableTaskScheduler'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    reportsContainerName: reportsContainerName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: 'sb-${resourceToken}'
    location: location
    tags: tags
    queueName: updateRequestsQueueName
    maxDeliveryCount: 5
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
  }
}

// The Durable Task Scheduler backend: only with durableBackend 'DurableTaskScheduler'.
module durableTask 'modules/durabletask.bicep' = if (useDurableTaskScheduler) {
  name: 'durabletask'
  scope: rg
  params: {
    name: 'dts-${resourceToken}'
    location: location
    tags: tags
    taskHubName: taskHubName
    skuName: durableTaskSchedulerSku
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    serviceBusQueueName: serviceBus.outputs.queueName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    // Empty (no Durable Task roles) unless the scheduler backend is deployed.
    durableTaskSchedulerName: useDurableTaskScheduler ? durableTask.outputs.name : ''
    durableTaskHubName: useDurableTaskScheduler ? durableTask.outputs.taskHubName : ''
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // The host reads the deployment container and the task hub on first start, so its
  // identity's roles must exist before the app does.
  dependsOn: [
    roles
  ]
  params: {
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    location: location
    tags: tags
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    keyVaultName: keyVault.outputs.name
    taskHubName: taskHubName
    targetApiKeySecretName: targetApiKeySecretName
    targetsBaseUrl: targetsBaseUrl
    reportsContainerName: reportsContainerName
    retentionDays: retentionDays
    retentionSchedule: retentionSchedule
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? durableTask.outputs.endpoint : ''
  }
}

// azd writes these into .azure/<env>/.env; infra/README.md uses them. None is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SERVICE_BUS_NAMESPACE_FQDN string = serviceBus.outputs.fullyQualifiedNamespace
output SERVICE_BUS_QUEUE_NAME string = serviceBus.outputs.queueName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output TARGET_API_KEY_SECRET_NAME string = targetApiKeySecretName
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = useDurableTaskScheduler ? durableTask.outputs.endpoint : ''
