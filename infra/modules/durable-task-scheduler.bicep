// Optional Durable Task Scheduler back end (main.bicep `useDurableTaskScheduler`): a scheduler (Consumption SKU),
// the app's task hub, and the Durable Task Data Contributor role for the managed identity (and for the deploying
// person, who then may open the scheduler's dashboard). modules/function-app.bicep points the Durable extension at
// it (storageProvider type azureManaged + a managed-identity connection string).

param name string
param location string
param tags object

@description('Task hub name: the value of TASKHUB_NAME, which host.json uses as hubName.')
param taskHubName string

@description('Addresses allowed to call the scheduler; identity-based access still applies. An empty list refuses everyone.')
param ipAllowlist array = [
  '0.0.0.0/0'
]

@description('Object id of the managed identity service principal (the app\'s worker and client).')
param identityPrincipalId string

@description('Object id of a user or group that may use the dashboard (azd sets AZURE_PRINCIPAL_ID); empty skips.')
param userPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

// Built-in role: Durable Task Data Contributor (orchestrations, activities, entities, and the dashboard).
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    // Consumption: billed per action (each work item the scheduler dispatches to the app). Dedicated (a fixed
    // monthly price per reserved capacity unit) is a change of this block: { name: 'Dedicated', capacity: 1 }.
    sku: {
      name: 'Consumption'
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource identityRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, identityPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(scheduler.id, userPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output dashboardUrl string = taskHub.properties.dashboardUrl
