#!/usr/bin/env bash
# Grants Microsoft Graph application permissions (app roles) to the function app's managed identity: the
# script alternative to deploying with grantGraphAppRoles=true. Run it as an admin who may grant Graph app
# roles (Privileged Role Administrator or Global Administrator), signed in with `az login`. Granting an app
# role to a managed identity *is* the admin consent: there is no separate consent prompt. Safe to re-run.
# Usage: see USAGE below (or run with --help).
set -euo pipefail

readonly GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"  # Microsoft Graph's well-known appId
readonly ALL_ROLES="Community.ReadWrite.All,User.Read.All,GroupMember.ReadWrite.All"

readonly USAGE="Usage: $0 [--principal-id <object id>] [--roles <role,role,...>]

Defaults come from the environment, else from the azd environment (azd env get-value):
  MANAGED_IDENTITY_PRINCIPAL_ID   object id of the managed identity (a main.bicep output)
  GRAPH_APP_ROLES                 comma-separated roles (a main.bicep output); default: $ALL_ROLES"

usage() { printf '%s\n' "$USAGE"; }

from_azd() {
  command -v azd >/dev/null 2>&1 && azd env get-value "$1" 2>/dev/null || true
}

principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
roles="${GRAPH_APP_ROLES:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) principal_id="${2:?--principal-id needs a value}"; shift 2 ;;
    --roles) roles="${2:?--roles needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$principal_id" ]] || principal_id="$(from_azd MANAGED_IDENTITY_PRINCIPAL_ID)"
[[ -n "$roles" ]] || roles="$(from_azd GRAPH_APP_ROLES)"
[[ -n "$roles" ]] || roles="$ALL_ROLES"
if [[ -z "$principal_id" ]]; then
  echo "No managed identity: pass --principal-id or set MANAGED_IDENTITY_PRINCIPAL_ID (azd sets it)." >&2
  exit 2
fi

# The Graph endpoint of the signed-in cloud (https://graph.microsoft.com in the public cloud).
graph="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)"
graph="${graph%/}/v1.0"

graph_sp_id="$(az rest --method get --url "$graph/servicePrincipals(appId='$GRAPH_APP_ID')" --query id -o tsv)"
echo "Microsoft Graph service principal: $graph_sp_id"
echo "Managed identity service principal: $principal_id"

IFS=',' read -r -a role_names <<<"$roles"
for role in "${role_names[@]}"; do
  role="${role//[[:space:]]/}"
  [[ -n "$role" ]] || continue
  role_id="$(az rest --method get --url "$graph/servicePrincipals/$graph_sp_id?\$select=appRoles" \
    --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
  if [[ -z "$role_id" || "$role_id" == "None" ]]; then
    echo "Microsoft Graph has no application permission named $role" >&2
    exit 1
  fi
  granted="$(az rest --method get --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
    --query "length(value[?appRoleId=='$role_id' && resourceId=='$graph_sp_id'])" -o tsv)"
  if [[ ! "$granted" =~ ^[0-9]+$ ]]; then
    echo "Could not read the app role assignments of $principal_id" >&2
    exit 1
  fi
  if (( granted > 0 )); then
    echo "already granted: $role"
    continue
  fi
  az rest --method post --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
    --output none
  echo "granted: $role"
done
echo "Done. Tokens the app already holds keep their old roles until they expire: allow a few hours for managed identity tokens to pick up the new roles."
