// Flex Consumption (FC1, Linux) plan + the Python function app. Everything is secret-less: the deployment
// package, host storage and telemetry are all reached with the user-assigned managed identity.

param name string
param planName string
param location string
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param appInsightsName string

@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Always-ready instances for the Durable Functions group (orchestrators, activities); 0 scales to zero.')
@minValue(0)
param durableAlwaysReadyInstances int = 1

@description('The settings the app code reads (all strings), merged over the platform settings below.')
param appSettings object

@description('Subnet to integrate with (modules/network.bicep, delegated to Microsoft.App/environments); empty: no VNet integration.')
param virtualNetworkSubnetId string = ''

@description('Endpoint of the Durable Task Scheduler (modules/durable-task-scheduler.bicep); empty keeps the Azure Storage provider.')
param durableTaskSchedulerEndpoint string = ''

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var storageSuffix = environment().suffixes.storage

// Flex Consumption: no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE
// (deprecated there; the runtime comes from functionAppConfig). Host storage is identity-based.
var platformAppSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: 'https://${storage.name}.blob.${storageSuffix}'
  AzureWebJobsStorage__queueServiceUri: 'https://${storage.name}.queue.${storageSuffix}'
  AzureWebJobsStorage__tableServiceUri: 'https://${storage.name}.table.${storageSuffix}'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The connection setting the azureManaged storage provider reads (its name is the connectionStringName below).
var durableTaskSchedulerConnection = 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'

// Durable Task Scheduler back end: the host.json durableTask.storageProvider is overridden by app settings
// (AzureFunctionsJobHost__<path>), so host.json keeps the Azure Storage provider for local runs and the default
// deployment. The connection authenticates as the user-assigned identity (no key, no secret).
var durableTaskSchedulerSettings = empty(durableTaskSchedulerEndpoint) ? {} : {
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: durableTaskSchedulerConnection
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Outbound traffic of the app goes through this subnet (and so reaches storage's private endpoints).
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // 'durable' is the per-function scaling group of all orchestration, activity and entity triggers.
        // Always-ready instances are billed around the clock (see docs/deploy.md); 0 removes them.
        alwaysReady: (durableAlwaysReadyInstances > 0) ? [
          {
            name: 'durable'
            instanceCount: durableAlwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Children as top-level resources with `parent`: pycep keeps only one nested child per parent.
resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(platformAppSettings, durableTaskSchedulerSettings, appSettings)
}

// Deployments authenticate with Entra ID (azd, func, az); basic-auth publishing credentials stay off.
// `location` is not in the published type (hence BCP187), but the resource provider answers "The parameter
// location has an invalid value" without it: Azure/bicep-types-az issues #1526, #1529, #1566, #1571.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
