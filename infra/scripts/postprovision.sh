#!/bin/sh
# azd postprovision hook (azure.yaml): prints where the API is and how to get a host key, then, when the
# Graph grant was opted in (GRANT_GRAPH_APP_ROLES=true), runs grant-graph-permissions.sh. azd passes the
# environment's values, main.bicep's outputs included, as environment variables. Never prints a key.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

# main.bicep outputs; missing ones mean this did not run after a successful `azd provision`.
missing="is not set: run this through azd (azd provision), which passes main.bicep's outputs"
: "${SERVICE_API_URI:?$missing}" "${AZURE_FUNCTION_NAME:?$missing}" "${AZURE_RESOURCE_GROUP:?$missing}"

# host.json sets the route prefix "api".
echo "API base URL: ${SERVICE_API_URI%/}/api"
if [ -n "${PUBLIC_BASE_URL:-}" ]; then
  echo "Public base URL (status URLs): $PUBLIC_BASE_URL"
fi
echo "OpenAPI description: ${SERVICE_API_URI%/}/api/openapi.json"
echo
echo "Every route needs a host key (x-functions-key header). The default one:"
echo "  az functionapp keys list -g \"$AZURE_RESOURCE_GROUP\" -n \"$AZURE_FUNCTION_NAME\" --query functionKeys.default -o tsv"
echo "Better, a named key per caller (revocable alone):"
echo "  az functionapp keys set -g \"$AZURE_RESOURCE_GROUP\" -n \"$AZURE_FUNCTION_NAME\" --key-type functionKeys --key-name <caller> -o none"
echo "For test.http: @baseUrl = ${SERVICE_API_URI%/}"

case "$(printf '%s' "${GRANT_GRAPH_APP_ROLES:-false}" | tr '[:upper:]' '[:lower:]')" in
  true | 1 | yes) ;;
  *)
    echo
    echo "Microsoft Graph permissions were not granted by this deployment (GRANT_GRAPH_APP_ROLES is not true):"
    echo "an admin runs infra/scripts/grant-graph-permissions.sh (docs/deploy.md, Microsoft Graph permissions)."
    exit 0
    ;;
esac

echo
echo "GRANT_GRAPH_APP_ROLES is true: checking the Graph app roles of the managed identity."
# The grant needs an Azure CLI session of an admin; azd's own login (e.g. in CI) is not one. Without it the
# Bicep grant of this provision stands and the check is left to an admin, with the exact command.
if ! command -v az >/dev/null 2>&1 || ! az account show --output none >/dev/null 2>&1; then
  echo "Skipped: the Azure CLI is not signed in. To check or repair the grant, an admin runs after 'az login':" >&2
  echo "  infra/scripts/grant-graph-permissions.sh --principal-id \"${MANAGED_IDENTITY_PRINCIPAL_ID:-<identity object id>}\" --roles \"${GRAPH_APP_ROLES:-<roles>}\"" >&2
  exit 0
fi
exec "$here/grant-graph-permissions.sh"
