// Optional App Service Authentication ("Easy Auth") with Microsoft Entra ID (main.bicep `entraAuthClientId`): every
// request must carry an Entra access token for the connector's app registration, issued to an allowed client
// application (the connector itself, Logic Apps or other Azure callers by their managed identity); anything else
// is answered 401 (no token) or 403 (a token from a client that is not allowed) before the Functions host sees it.
// Function keys are checked by the host after that, as before (docs/deploy.md, "Microsoft Entra ID sign-in").

param functionAppName string

@description('Application (client) id of the app registration that represents the API (the custom connector\'s resource).')
param clientId string

@description('Tenant of the app registration; tokens from other tenants are refused.')
param tenantId string

@description('Accepted token audiences; empty accepts the client id (v2 tokens) and api://<client id> (v1 tokens).')
param allowedAudiences array = []

@description('Client ids (appid/azp claim) allowed to call: the connector\'s client registration if it is a separate one, the client ids of Logic Apps or other managed identities. The API registration\'s own client id is always allowed.')
param allowedClientApplications array = []

@description('Object ids (oid claim) allowed to call. Non-empty restricts EVERY caller, users of the connector included, to this list (App Service ANDs it with allowedClientApplications).')
param allowedPrincipalIds array = []

@description('Paths served without a token (App Service globalValidation.excludedPaths), e.g. the anonymous dashboard page.')
param excludedPaths array = []

var audiences = empty(allowedAudiences) ? [
  clientId
  'api://${clientId}'
] : allowedAudiences

var clientApplications = union([
  clientId
], allowedClientApplications)

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      // An API, not a web site: no redirect to a sign-in page.
      unauthenticatedClientAction: 'Return401'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          // No client secret: the app only validates bearer tokens, it never signs anyone in itself.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: audiences
          defaultAuthorizationPolicy: {
            allowedApplications: clientApplications
            allowedPrincipals: empty(allowedPrincipalIds) ? {} : {
              identities: allowedPrincipalIds
            }
          }
        }
      }
    }
    login: {
      // Bearer tokens only: nothing to store.
      tokenStore: {
        enabled: false
      }
    }
  }
}

output allowedAudiences array = audiences
output allowedClientApplications array = clientApplications
