#!/usr/bin/env bash
# Grants Microsoft Graph application permissions (app roles) to the function app's managed identity: the
# script alternative to deploying with grantGraphAppRoles=true, and what the postprovision hook runs when
# GRANT_GRAPH_APP_ROLES is true. Run it as an admin who may grant Graph app roles (Privileged Role
# Administrator or Global Administrator), signed in with `az login`. Granting an app role to a managed
# identity *is* the admin consent: there is no separate consent prompt.
#
# Idempotent: a role already assigned is reported and skipped, never posted twice. Entra ID is eventually
# consistent, so right after the identity or an assignment was created (by the Bicep grant in the same
# `azd provision`, say) a read may not see it yet (msgraph-bicep-types #193, #161). Hence reads of the
# identity are retried, and a failed POST is followed by a fresh read: if the role is there, it counts as
# already granted.
# Usage: see USAGE below (or run with --help).
set -euo pipefail

readonly GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"  # Microsoft Graph's well-known appId
readonly ALL_ROLES="Community.ReadWrite.All,User.Read.All,GroupMember.ReadWrite.All"
# Reads of a just-created identity: attempts and the pause between them (the tests set the pause to 0).
readonly ATTEMPTS="${GRANT_RETRY_ATTEMPTS:-8}"
readonly DELAY="${GRANT_RETRY_DELAY_SECONDS:-15}"

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

# How many assignments of role $1 the identity holds on Graph; retried while the identity is not readable yet.
assignments_of() {
  local attempt count
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    if count="$(az rest --method get --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
      --query "length(value[?appRoleId=='$1' && resourceId=='$graph_sp_id'])" -o tsv)" \
      && [[ "$count" =~ ^[0-9]+$ ]]; then
      printf '%s\n' "$count"
      return 0
    fi
    if ((attempt < ATTEMPTS)); then
      echo "The identity's app role assignments are not readable yet (attempt $attempt of $ATTEMPTS); retrying in ${DELAY}s" >&2
      sleep "$DELAY"
    fi
  done
  echo "Could not read the app role assignments of $principal_id" >&2
  return 1
}

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
  granted="$(assignments_of "$role_id")" || exit 1
  if ((granted > 0)); then
    echo "already granted: $role"
    continue
  fi
  if ! az rest --method post --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
    --output none; then
    # Graph refuses a second identical assignment; one created meanwhile (or not yet visible to the first
    # read) is what we wanted, so only a role that is still missing is an error.
    granted="$(assignments_of "$role_id")" || exit 1
    if ((granted > 0)); then
      echo "already granted: $role"
      continue
    fi
    echo "Could not grant $role to $principal_id" >&2
    exit 1
  fi
  echo "granted: $role"
done
echo "Done. Tokens the app already holds keep their old roles until they expire: allow a few hours for managed identity tokens to pick up the new roles."
