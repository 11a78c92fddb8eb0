// Grants Microsoft Graph application permissions (app roles) to the managed identity. Opt-in from main.bicep
// (grantGraphAppRoles): the deploying principal needs AppRoleAssignment.ReadWrite.All + Application.Read.All
// (e.g. Privileged Role Administrator). Otherwise an admin runs infra/scripts/grant-graph-permissions.sh.
// This is the only file that uses the Graph extension, so checkov's older parser skipping it costs nothing else.
extension microsoftGraphV1

@description('Object id of the managed identity service principal.')
param principalId string

@description('Graph application permissions to grant, e.g. Community.ReadWrite.All.')
param appRoleNames array

// Microsoft Graph's first-party service principal, found by its well-known appId.
resource msGraphSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

var graphAppRoles = msGraphSp.appRoles

resource graphAppRoleAssignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for roleName in appRoleNames: {
  principalId: principalId
  resourceId: msGraphSp.id
  appRoleId: filter(graphAppRoles, r => r.value == roleName)[0].id
}]
