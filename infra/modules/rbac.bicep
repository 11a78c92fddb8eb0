// Data-plane roles. The managed identity gets what the Functions host and Durable Functions (Azure Storage
// provider) need plus telemetry publishing; the optional developer principal gets the same storage data roles
// so they can run the app locally against the real account.

param storageAccountName string
param appInsightsName string

@description('Object id of the managed identity service principal.')
param identityPrincipalId string

@description('Object id of a user or group to grant the same storage data roles (azd sets AZURE_PRINCIPAL_ID); empty skips.')
param userPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

// Built-in role definition ids (stable across tenants).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Blob owner (host leases, deployment package; covers Durable's blob contributor need), queue and table
// contributor (Durable's control/work-item queues and history/instances tables, the app's queues).
var storageRoleIds = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource identityStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoleIds: {
  name: guid(storage.id, identityPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource identityMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// An empty loop instead of a loop condition: the offline parsers do not accept `[for ...: if (...)]`.
resource userStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in (empty(userPrincipalId) ? [] : storageRoleIds): {
  name: guid(storage.id, userPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}]
