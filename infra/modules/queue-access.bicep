// Outside callers of the queue channel (Logic Apps, Power Automate, other services). The storage account accepts
// Entra ID only (shared keys off), so every sender and reader needs a data role, and gets it on its one queue
// only: senders may add messages to the requests queue, readers may read and delete messages of the results
// queue. Each entry is { principalId: '<object id>', principalType: 'ServicePrincipal' | 'User' | 'Group' }
// (principalType defaults to ServicePrincipal: managed identities and app registrations).

param storageAccountName string

@description('Queue the app reads requests from (PROVISIONING_QUEUE).')
param requestQueueName string

@description('Queue the app writes results to (RESULTS_QUEUE).')
param resultsQueueName string

@description('Principals that may put requests on the requests queue: Storage Queue Data Message Sender on that queue.')
param requestQueueSenders array = []

@description('Principals that may read and delete results: Storage Queue Data Message Processor on the results queue.')
param resultQueueReaders array = []

// Built-in role definition ids (stable across tenants).
var roles = {
  // Add messages (Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action) and nothing else.
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  // Peek, retrieve and delete messages: what "Get messages" + "Delete message" need.
  storageQueueDataMessageProcessor: '8a0f0c08-91a1-4084-bc3d-661d67233fed'
}

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' existing = {
  parent: storage
  name: 'default'
}

resource requestQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' existing = {
  parent: queueService
  name: requestQueueName
}

resource resultsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' existing = {
  parent: queueService
  name: resultsQueueName
}

resource senderRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for sender in requestQueueSenders: {
  name: guid(requestQueue.id, sender.principalId, roles.storageQueueDataMessageSender)
  scope: requestQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: sender.principalId
    principalType: (sender.?principalType) ?? 'ServicePrincipal'
  }
}]

resource readerRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for reader in resultQueueReaders: {
  name: guid(resultsQueue.id, reader.principalId, roles.storageQueueDataMessageProcessor)
  scope: resultsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageProcessor)
    principalId: reader.principalId
    principalType: (reader.?principalType) ?? 'ServicePrincipal'
  }
}]

output requestQueueId string = requestQueue.id
output resultsQueueId string = resultsQueue.id
