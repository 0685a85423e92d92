// Durable Task Scheduler (Microsoft.DurableTask) and the app's task hub: the managed
// Durable Functions backend, deployed only when main.bicep's durableBackend is
// 'DurableTaskScheduler'. Access is Entra ID only (Durable Task Data Contributor on the
// task hub, roles.bicep); the app connects through DURABLE_TASK_SCHEDULER_CONNECTION_STRING
// (functionapp.bicep). See infra/README.md for when to choose it.
param name string
param location string
param tags object
@description('Task hub name: the TASK_HUB_NAME app setting (host.json hubName) names this hub.')
param taskHubName string
@allowed(['Consumption', 'Dedicated'])
@description('Consumption: pay per action, no capacity to plan. Dedicated: reserved capacity units for steady high throughput.')
param skuName string = 'Consumption'
@minValue(1)
@description('Capacity units (Dedicated only).')
param dedicatedCapacity int = 1

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // Required by the API, and an empty list denies every caller. No VNet in this template
    // (as for storage and Key Vault): callers are authorized by Entra ID roles only.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: skuName == 'Dedicated' ? { name: 'Dedicated', capacity: dedicatedCapacity } : { name: 'Consumption' }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' = {
  parent: scheduler
  name: taskHubName
}

output name string = scheduler.name
output taskHubName string = taskHub.name
// https://<name>.<region>.durabletask.io: the Endpoint of the connection string.
output endpoint string = scheduler.properties.endpoint
