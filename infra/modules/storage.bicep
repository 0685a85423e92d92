// The one storage account: Functions host state (AzureWebJobsStorage), the Durable
// task hub (queues, tables, blobs), the Flex Consumption deployment package container
// and the `reports` container the app writes final reports to.
// Shared keys are disabled: every caller authenticates with Entra ID (roles.bicep).
param name string
param location string
param tags object
@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string
@description('Blob container the app writes reports to (app setting REPORTS_CONTAINER).')
param reportsContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: No VNet in this template: the Flex Consumption app reaches storage over its public endpoint. Shared keys are off, so only Entra principals holding the roles in roles.bicep get in. Add VNet integration + private endpoints to close it.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public endpoint needed without a VNet; access is Entra-only (allowSharedKeyAccess false).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant: the task hub holds in-flight orchestration state and reports.
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
