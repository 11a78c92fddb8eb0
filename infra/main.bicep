// Viva Engage Community Provisioner: a Python Durable Functions app on Flex Consumption that calls Microsoft Graph
// with a user-assigned managed identity. No secrets anywhere: storage, deployment, telemetry and Graph all use
// Entra ID. Written in the syntax checkov's Bicep parser understands (no import/func/typed params).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name (dev, test, prod...); names the resource group and the task hub.')
param environmentName string

@minLength(1)
@description('Region for all resources; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty means rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person deploying (azd sets AZURE_PRINCIPAL_ID); gets storage data roles to run the app locally against Azure. Empty skips.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

// Hosting
@allowed([
  '3.11'
  '3.12'
])
@description('Python version of the function app; 3.11 is what the test suite runs.')
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

@minValue(0)
@description('Always-ready instances for the Durable Functions group. Each is billed continuously (memory x time); 0 lets the app scale to zero.')
param durableAlwaysReadyInstances int = 1

@description('Storage redundancy; LRS is the cheapest, ZRS/GZRS for production resilience.')
param storageSkuName string = 'Standard_LRS'

// Microsoft Graph permissions
@description('Grant the Graph app roles to the managed identity in this deployment (needs AppRoleAssignment.ReadWrite.All + Application.Read.All). Off: an admin runs infra/scripts/grant-graph-permissions.sh.')
param grantGraphAppRoles bool = false

@description('Also grant User.Read.All (owners/members given as UPNs) and GroupMember.ReadWrite.All (adding members).')
param grantUserAndMemberRoles bool = true

// App settings read by the code (provisioning/settings.py, host.json, function bindings). Defaults = the code's.
@description('Durable Functions task hub (TASKHUB_NAME); empty derives one per environment. Letters and digits, 3-45 chars.')
param taskHubName string = ''

param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'
param graphConnectTimeoutSeconds string = '5'
param graphReadTimeoutSeconds string = '30'

@description('Seconds between Graph operation status checks; Graph asks for at least 30.')
param statusPollIntervalSeconds string = '30'

param provisioningTimeoutMinutes string = '60'

@description('Viva Engage requests the whole app may send per window (Graph allows 10 per 30 s per app).')
param graphBudgetRequests string = '10'

@description('The window of graphBudgetRequests, in seconds.')
param graphBudgetWindowSeconds string = '30'
param provisioningQueue string = 'community-requests'
param resultsQueue string = 'community-results'

@description('Comma-separated host names or *.suffix patterns callback URLs may point to.')
param callbackAllowedHosts string = '*.logic.azure.com,*.azure-apim.net,*.powerplatform.com,*.api.powerplatform.com,*.flow.microsoft.com,*.powerautomate.com'

@description('Allow callback URLs on loopback hosts; only for local testing, never in Azure.')
param callbackAllowLoopback string = 'false'

@description('Public base URL of the API (e.g. behind API Management) for status URLs; empty uses the host of each request.')
param publicBaseUrl string = ''

// Observability (docs/operations.md)
@description('Diagnostic settings of the function app and the queue service into the Log Analytics workspace.')
param deployDiagnosticSettings bool = true

@description('The operations workbook (free).')
param deployWorkbook bool = true

@description('Log alert rules + action group; billed per rule, so off by default.')
param deployAlerts bool = false

@description('Email address alerts go to (with deployAlerts); empty creates the action group without a receiver.')
param alertEmailAddress string = ''

// Queue channel callers (docs/power-automate.md, "Azure Queues"). Storage takes Entra ID only, so each caller needs a
// data role on its queue. Items: { principalId: '<object id>', principalType: 'ServicePrincipal' (default) | 'User' | 'Group' }.
@description('Principals that may put requests on the requests queue (Storage Queue Data Message Sender on that queue only).')
param requestQueueSenders array = []

@description('Principals that may read and delete results (Storage Queue Data Message Processor on the results queue only).')
param resultQueueReaders array = []

// Options, all off by default (docs/deploy.md)
@description('Network isolation: a VNet the app integrates with, storage behind private endpoints with public access off.')
param vnetEnabled bool = false

@description('Run Durable Functions on the Durable Task Scheduler (scheduler + task hub, billed per action) instead of Azure Storage.')
param useDurableTaskScheduler bool = false

@description('App Service Authentication with Microsoft Entra ID: client id of the app registration callers get tokens for. Empty: off (function keys only).')
param entraAuthClientId string = ''

@description('Tenant of that app registration; empty means the tenant of the deployment.')
param entraAuthTenantId string = ''

@description('Accepted token audiences; empty accepts <client id> and api://<client id>.')
param entraAuthAllowedAudiences array = []

@description('Client ids (appid/azp) allowed besides the registration itself: a separate connector client, Logic Apps managed identities...')
param entraAuthAllowedClientApplications array = []

@description('Object ids (oid) allowed; non-empty restricts every caller to this list (ANDed with the client applications).')
param entraAuthAllowedPrincipalIds array = []

@description('Paths served without a token while Entra sign-in is on (the anonymous operators\' dashboard page).')
param entraAuthExcludedPaths array = [
  '/api/dashboard'
]

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
// Blob container of the Flex deployment package (container names: at most 63 characters).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'
// Task hub names allow letters and digits only: one hub per environment keeps apps sharing an account apart.
var defaultTaskHubName = take('provisioner${toLower(replace(replace(replace(environmentName, '-', ''), '_', ''), '.', ''))}', 45)

var entraAuthEnabled = !empty(entraAuthClientId)

var graphAppRoles = grantUserAndMemberRoles ? [
  'Community.ReadWrite.All'
  'User.Read.All'
  'GroupMember.ReadWrite.All'
] : [
  'Community.ReadWrite.All'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    queueNames: [
      provisioningQueue
      resultsQueue
    ]
    vnetEnabled: vnetEnabled
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

module queueAccess 'modules/queue-access.bicep' = if (!(empty(requestQueueSenders) && empty(resultQueueReaders))) {
  name: 'queue-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    requestQueueName: provisioningQueue
    resultsQueueName: resultsQueue
    requestQueueSenders: requestQueueSenders
    resultQueueReaders: resultQueueReaders
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// Every setting the code reads, with the code's defaults (tests/infra keeps this in step with the code).
var appSettings = {
  AZURE_CLIENT_ID: identity.outputs.clientId
  TASKHUB_NAME: empty(taskHubName) ? defaultTaskHubName : taskHubName
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_CONNECT_TIMEOUT_SECONDS: graphConnectTimeoutSeconds
  GRAPH_READ_TIMEOUT_SECONDS: graphReadTimeoutSeconds
  STATUS_POLL_INTERVAL_SECONDS: statusPollIntervalSeconds
  PROVISIONING_TIMEOUT_MINUTES: provisioningTimeoutMinutes
  GRAPH_BUDGET_REQUESTS: graphBudgetRequests
  GRAPH_BUDGET_WINDOW_SECONDS: graphBudgetWindowSeconds
  PROVISIONING_QUEUE: provisioningQueue
  RESULTS_QUEUE: resultsQueue
  CALLBACK_ALLOWED_HOSTS: callbackAllowedHosts
  CALLBACK_ALLOW_LOOPBACK: callbackAllowLoopback
  PUBLIC_BASE_URL: publicBaseUrl
}

module durableTaskScheduler 'modules/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: 'dts-${resourceToken}'
    location: location
    tags: tags
    taskHubName: appSettings.TASKHUB_NAME
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    durableAlwaysReadyInstances: durableAlwaysReadyInstances
    appSettings: appSettings
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
  }
  // The host starts as soon as the app exists: give it its storage and telemetry roles first.
  dependsOn: [
    rbac
  ]
}

module entraAuth 'modules/auth.bicep' = if (entraAuthEnabled) {
  name: 'entra-auth'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    clientId: entraAuthClientId
    tenantId: empty(entraAuthTenantId) ? tenant().tenantId : entraAuthTenantId
    allowedAudiences: entraAuthAllowedAudiences
    allowedClientApplications: entraAuthAllowedClientApplications
    allowedPrincipalIds: entraAuthAllowedPrincipalIds
    excludedPaths: entraAuthExcludedPaths
  }
}

module observability 'modules/observability.bicep' = {
  name: 'observability'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    functionAppName: functionApp.outputs.name
    storageAccountName: storage.outputs.name
    provisioningQueue: provisioningQueue
    deployDiagnosticSettings: deployDiagnosticSettings
    deployWorkbook: deployWorkbook
    deployAlerts: deployAlerts
    alertEmailAddress: alertEmailAddress
  }
}

module graphPermissions 'modules/graph-app-roles.bicep' = if (grantGraphAppRoles) {
  name: 'graph-app-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    appRoleNames: graphAppRoles
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
// Not AZURE_CLIENT_ID: azd exports outputs into local shells, where that name would steer azure-identity.
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output GRAPH_APP_ROLES string = join(graphAppRoles, ',')
output TASKHUB_NAME string = appSettings.TASKHUB_NAME
output DURABLE_TASK_SCHEDULER_ENDPOINT string = useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
output DURABLE_TASK_SCHEDULER_DASHBOARD_URL string = useDurableTaskScheduler ? durableTaskScheduler.outputs.dashboardUrl : ''
output ENTRA_AUTH_ENABLED bool = entraAuthEnabled
