// The one identity the function app runs as. User-assigned (not system-assigned) so the
// role assignments in roles.bicep can exist *before* the app is created: the Flex
// Consumption host reads its deployment package and task hub on first start.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
