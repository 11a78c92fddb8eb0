// Storage for the Functions host (AzureWebJobsStorage: blobs, Durable's queues and tables), the Flex deployment
// package, and the app's own intake/results queues. Entra ID only: shared keys are off.

param name string
param location string
param tags object

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Queues the app reads from (intake) and writes to (results); created here so triggers start clean.')
param queueNames array

@description('Storage redundancy; LRS keeps the idle cost lowest, use ZRS/GZRS for production resilience.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'

@description('Network isolation (main.bicep vnetEnabled): public network access off; the app reaches the account through the private endpoints of modules/network.bicep.')
param vnetEnabled bool = false

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    // With vnetEnabled, as in the Functions azd quickstarts: no public endpoint, no trusted-service bypass.
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: vnetEnabled ? {
      bypass: 'None'
      defaultAction: 'Deny'
    } : {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

// A top-level loop with `parent`: checkov's parser does not accept loops over nested child resources.
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

output name string = storage.name
// https://<account>.queue.<suffix>/: what the Azure Queues connector and other senders take as the queue endpoint.
output queueEndpoint string = storage.properties.primaryEndpoints.queue
