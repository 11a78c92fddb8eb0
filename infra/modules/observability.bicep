// What operators look at in Azure: diagnostic settings into the Log Analytics workspace, a workbook, and optional
// log alerts with an action group. Every query reads the workspace (AppRequests, AppTraces: the workspace-based
// Application Insights tables; StorageQueueLogs: the queue service's resource logs), so one scope serves all.
// The KQL matches the messages the app logs today (docs/operations.md lists each query and its source line).
// Single-line strings on purpose: both offline parsers (pycep-parser 0.5.1 and 0.7.1) read them.

param location string
param tags object

@description('Log Analytics workspace the App Insights component writes to; target of the diagnostic settings.')
param logAnalyticsName string

param functionAppName string
param storageAccountName string

@description('The intake queue; the Functions host moves messages it gave up on to <queue>-poison.')
param provisioningQueue string

@description('Diagnostic settings: FunctionAppLogs + metrics of the app, queue write/delete logs of storage.')
param deployDiagnosticSettings bool = true

@description('The operations workbook (free: a saved set of queries).')
param deployWorkbook bool = true

@description('Log alert rules and their action group (billed per rule and evaluation).')
param deployAlerts bool = false

@description('Email address the action group notifies; empty creates the group without a receiver.')
param alertEmailAddress string = ''

var nameSuffix = uniqueString(resourceGroup().id, functionAppName)
var poisonQueue = '${provisioningQueue}-poison'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' existing = {
  parent: storage
  name: 'default'
}

// ---- diagnostic settings ------------------------------------------------------------------------------------

// FunctionAppLogs is not sampled (Application Insights may be): the backstop for "what did the host say".
resource functionAppDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (deployDiagnosticSettings) {
  name: 'to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// Writes and deletes only: they follow the work (a message in, a message done or poisoned). StorageRead would log
// every poll of the host and of Durable's queues, around the clock (docs/operations.md, "What it costs").
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (deployDiagnosticSettings) {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

// ---- queries (KQL; also in docs/operations.md) ----------------------------------------------------------------

// Outcome lines of orchestrators/provision.py: "<requestId>: community <id> is ready", "...: failed with <Code>: ...",
// "...: canceled by the caller in phase ...", "...: unexpected <Exception>: ...".
var outcomesQuery = 'AppTraces | where Message has_any ("is ready", "failed with", "canceled by the caller", ": unexpected ") | extend Outcome = case(Message has "is ready", "Succeeded", Message has "canceled by the caller", "Canceled", "Failed") | summarize Requests = count() by Outcome, bin(TimeGenerated, 1h) | render timechart'
var invocationsQuery = 'AppRequests | summarize Invocations = count() by Result = strcat(Name, iff(Success, " ok", " failed")), bin(TimeGenerated, 1h) | render timechart'
var failuresByCodeQuery = 'AppTraces | where Message has "failed with" or Message has ": unexpected " | parse Message with RequestId ": failed with " Code ": " Detail | extend Code = iff(isempty(Code), "InternalError (unexpected)", Code) | summarize Failures = count(), Last = max(TimeGenerated), Example = take_any(RequestId) by Code | order by Failures desc'
var statusChecksQuery = 'AppTraces | where Message has "Graph finished the creation after" | parse Message with RequestId ": Graph finished the creation after " Checks:long " checks" | summarize Requests = count() by Checks | order by Checks asc'
// Graph exchange line of provisioning/graph/client.py (_log_exchange): the message text, not custom dimensions
// (the Python worker does not forward `extra` fields to Application Insights).
var graphExchange = 'AppTraces | where Message startswith "Graph " and Message has " ms (request-id " | parse Message with "Graph " Method " " Path " -> " Outcome " in " DurationMs:long " ms (request-id " GraphRequestId ", client-request-id " ClientRequestId ")" | extend Route = replace_regex(Path, "[0-9a-fA-F-]{36}|[A-Za-z0-9_=-]{24,}", "{id}")'
var graphLatencyQuery = '${graphExchange} | summarize Calls = count(), p50 = percentile(DurationMs, 50), p95 = percentile(DurationMs, 95), Max = max(DurationMs) by Method, Route, Outcome | order by Calls desc'
var graph429Query = '${graphExchange} | where Outcome == "429" | summarize Throttled = count() by bin(TimeGenerated, 15m) | render timechart'
var callbackFailuresQuery = 'AppTraces | where Message has "callback not delivered" or (Message startswith "callback to " and Message !has "delivered (HTTP") | project TimeGenerated, SeverityLevel, Message, OperationId | order by TimeGenerated desc'
// StorageQueueLogs needs the queue diagnostic setting; the host's own poison line works without it.
var poisonDepthQuery = 'StorageQueueLogs | where ObjectKey endswith "/${poisonQueue}/messages" or Uri has "/${poisonQueue}/messages" | summarize Added = countif(OperationName == "PutMessage"), Removed = countif(OperationName == "DeleteMessage" or OperationName == "ClearMessages") by bin(TimeGenerated, 1h) | order by TimeGenerated asc | extend Depth = row_cumsum(Added - Removed) | render timechart'

// Alert queries: every row is one reason to look (timeAggregation Count > 0).
var failedRequestAlertQuery = 'union isfuzzy=true (AppRequests | where Success == false | project TimeGenerated, What = strcat(Name, " failed (", ResultCode, ")")), (AppTraces | where Message has "failed with" or Message has ": unexpected " | project TimeGenerated, What = Message)'
var poisonAlertQuery = 'union isfuzzy=true (AppTraces | where Message has "${poisonQueue}" | project TimeGenerated, What = Message), (StorageQueueLogs | where OperationName == "PutMessage" and Uri has "/${poisonQueue}/messages" | project TimeGenerated, What = strcat("message put on ", "${poisonQueue}"))'
var callbackAlertQuery = 'AppTraces | where Message has "callback not delivered" | project TimeGenerated, What = Message'
var graph429AlertQuery = '${graphExchange} | where Outcome == "429" | project TimeGenerated, What = strcat(Method, " ", Route)'

// ---- workbook -------------------------------------------------------------------------------------------------

// Tiles written out: checkov's parser (pycep 0.5.1) does not read lambdas such as map(..., t => {...}).
var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Viva Engage Community Provisioner\nQueries and what to do with them: docs/operations.md in the repository. Time range: last 24 hours (change it per tile).'
      }
    }
    {
      type: 3
      name: 'outcomes'
      content: {
        version: 'KqlItem/1.0'
        title: 'Provisioning requests per hour by outcome'
        query: outcomesQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'invocations'
      content: {
        version: 'KqlItem/1.0'
        title: 'Function invocations per hour (HTTP, queue, orchestrator, activity)'
        query: invocationsQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'failures-by-code'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failed requests by error code'
        query: failuresByCodeQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'status-checks'
      content: {
        version: 'KqlItem/1.0'
        title: 'Status checks Graph needed before a creation finished'
        query: statusChecksQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'graph-latency'
      content: {
        version: 'KqlItem/1.0'
        title: 'Microsoft Graph latency (ms) by call'
        query: graphLatencyQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'graph-429'
      content: {
        version: 'KqlItem/1.0'
        title: 'Microsoft Graph 429 (throttled) answers'
        query: graph429Query
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'callback-failures'
      content: {
        version: 'KqlItem/1.0'
        title: 'Callback deliveries that failed'
        query: callbackFailuresQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
    {
      type: 3
      name: 'poison-depth'
      content: {
        version: 'KqlItem/1.0'
        title: 'Poison queue ${poisonQueue}: messages added, removed, approximate depth'
        query: poisonDepthQuery
        size: 0
        timeContext: {
          durationMs: 86400000
        }
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
      }
    }
  ]
  isLocked: false
  fallbackResourceIds: [
    logAnalytics.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = if (deployWorkbook) {
  // Workbook resource names are GUIDs.
  name: guid(resourceGroup().id, functionAppName, 'operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Community provisioner operations (${functionAppName})'
    category: 'workbook'
    sourceId: logAnalytics.id
    serializedData: string(workbookContent)
  }
}

// ---- alerts (opt-in) -------------------------------------------------------------------------------------------

var actionGroupName = 'ag-${nameSuffix}'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (deployAlerts) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'provisioner'
    enabled: true
    emailReceivers: empty(alertEmailAddress) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

// periods: consecutive 5-minute windows that must each have a row (3 = sustained for 15 minutes).
var alertDefinitions = [
  {
    name: 'failed-request'
    displayName: 'Provisioner: a request or function invocation failed'
    description: 'A provisioning request ended Failed, or a function invocation failed. docs/operations.md, "A request failed".'
    severity: 2
    periods: 1
    query: failedRequestAlertQuery
  }
  {
    name: 'poison-queue'
    displayName: 'Provisioner: a message reached the poison queue'
    description: 'The host gave up on an intake message and moved it to ${poisonQueue}. docs/operations.md, "Poison queue".'
    severity: 1
    periods: 1
    query: poisonAlertQuery
  }
  {
    name: 'callback-failed'
    displayName: 'Provisioner: a callback was not delivered'
    description: 'A callback POST failed or was refused. docs/operations.md, "Callback not delivered".'
    severity: 3
    periods: 1
    query: callbackAlertQuery
  }
  {
    name: 'graph-429-sustained'
    displayName: 'Provisioner: Microsoft Graph throttling for 15 minutes'
    description: 'Graph answered 429 in each of three 5-minute windows. docs/operations.md, "Graph throttling".'
    severity: 2
    periods: 3
    query: graph429AlertQuery
  }
]

// An empty loop instead of a loop condition: the offline parsers do not accept `[for ...: if (...)]`.
resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in (deployAlerts ? alertDefinitions : []): {
  name: 'alert-${rule.name}-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      logAnalytics.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: rule.periods
            minFailingPeriodsToAlert: rule.periods
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        resourceId('Microsoft.Insights/actionGroups', actionGroupName)
      ]
    }
  }
  dependsOn: [
    actionGroup
  ]
}]

output workbookName string = deployWorkbook ? workbook.name : ''
output actionGroupName string = deployAlerts ? actionGroupName : ''
