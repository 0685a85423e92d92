// Service Bus namespace and the `update-requests` queue the Service Bus starter
// function listens on. Local (SAS) auth is disabled: senders and the trigger use Entra ID.
param name string
param location string
param tags object
@description('Queue the app\'s Service Bus trigger reads (update_service.settings.UPDATE_REQUESTS_QUEUE).')
param queueName string
@description('Deliveries before a message is dead-lettered; a poison request should not retry forever.')
@minValue(1)
param maxDeliveryCount int = 5

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
  }
}

output name string = namespace.name
output queueName string = queue.name
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ (cloud-specific suffix);
// the identity-based connection wants just the host name.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
