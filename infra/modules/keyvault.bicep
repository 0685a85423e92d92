// Key Vault for the targets' API key. RBAC authorization only (no access policies);
// purge protection so a deleted secret cannot be destroyed before the retention ends.
// The secret *value* is never in Bicep: see infra/README.md for `az keyvault secret set`.
param name string
param location string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without VNet integration has no fixed outbound IPs to allow-list, so the firewall must admit Azure; reads need Key Vault Secrets User (RBAC only, no access policies).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: no VNet/private endpoint in this template; data-plane access is Entra RBAC only.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
