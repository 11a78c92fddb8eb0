// Grants Microsoft Graph application permissions (app roles) to the managed identity. Opt-in from main.bicep
// (grantGraphAppRoles): the deploying principal needs AppRoleAssignment.ReadWrite.All + Application.Read.All
// (e.g. Privileged Role Administrator). Otherwise an admin runs infra/scripts/grant-graph-permissions.sh.
// This is the only file that uses the Graph extension, so checkov's older parser skipping it costs nothing else.
//
// Redeploying must be a no-op. In the v1.0 1.0.0 types an appRoleAssignedTo is neither upsertable nor
// updatable and is found again by its key: the resource service principal it sits under (resourceId) plus
// appRoleId and principalId (msgraph-bicep-types src/swagger-generation/configs/v1.0/1.0.0.yml; role +
// principal since #164; #161, a redeploy refused with "EntitlementGrant entry already exists", is still
// open). So each assignment declares exactly those three values, all stable across deployments (the role id
// is Graph's, looked up by name; the principal is the identity's), and nothing else: any other property
// would have to be updated in place, which this type cannot do.
extension microsoftGraphV1

@description('Object id of the managed identity service principal.')
param principalId string

@description('Graph application permissions to grant, e.g. Community.ReadWrite.All (no duplicates: two entries would be two creates of one assignment).')
param appRoleNames array

// Microsoft Graph's first-party service principal, found by its well-known appId.
resource msGraphSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

// Only roles offered to applications: the same choice as the grant script, so both grant the same ids.
var applicationRoles = filter(msGraphSp.appRoles, r => contains(r.allowedMemberTypes, 'Application'))

resource graphAppRoleAssignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for roleName in appRoleNames: {
  principalId: principalId
  resourceId: msGraphSp.id
  appRoleId: filter(applicationRoles, r => r.value == roleName)[0].id
}]
