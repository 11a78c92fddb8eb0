# azd postprovision hook on Windows (azure.yaml): the same steps as postprovision.sh. Prints where the API is
# and how to get a host key; when GRANT_GRAPH_APP_ROLES is true, runs grant-graph-permissions.sh with bash
# (Git Bash or WSL) if there is one, else prints the command. azd passes main.bicep's outputs as environment
# variables. Never prints a key.
$ErrorActionPreference = 'Stop'

foreach ($name in 'SERVICE_API_URI', 'AZURE_FUNCTION_NAME', 'AZURE_RESOURCE_GROUP') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        [Console]::Error.WriteLine("$name is not set: run this through azd (azd provision), which passes main.bicep's outputs")
        exit 1
    }
}
$uri = $env:SERVICE_API_URI.TrimEnd('/')
$rg = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_NAME

# host.json sets the route prefix "api".
Write-Host "API base URL: $uri/api"
if ($env:PUBLIC_BASE_URL) { Write-Host "Public base URL (status URLs): $($env:PUBLIC_BASE_URL)" }
Write-Host "OpenAPI description: $uri/api/openapi.json"
Write-Host ''
Write-Host 'Every route needs a host key (x-functions-key header). The default one:'
Write-Host "  az functionapp keys list -g `"$rg`" -n `"$app`" --query functionKeys.default -o tsv"
Write-Host 'Better, a named key per caller (revocable alone):'
Write-Host "  az functionapp keys set -g `"$rg`" -n `"$app`" --key-type functionKeys --key-name <caller> -o none"
Write-Host "For test.http: @baseUrl = $uri"

if (@('true', '1', 'yes') -notcontains "$($env:GRANT_GRAPH_APP_ROLES)".ToLowerInvariant()) {
    Write-Host ''
    Write-Host 'Microsoft Graph permissions were not granted by this deployment (GRANT_GRAPH_APP_ROLES is not true):'
    Write-Host 'an admin runs infra/scripts/grant-graph-permissions.sh (docs/deploy.md, Microsoft Graph permissions).'
    exit 0
}

Write-Host ''
Write-Host 'GRANT_GRAPH_APP_ROLES is true: checking the Graph app roles of the managed identity.'
$grant = 'infra/scripts/grant-graph-permissions.sh'
$command = "$grant --principal-id `"$($env:MANAGED_IDENTITY_PRINCIPAL_ID)`" --roles `"$($env:GRAPH_APP_ROLES)`""
$signedIn = $false
if (Get-Command az -ErrorAction SilentlyContinue) {
    az account show --output none 2>$null
    $signedIn = ($LASTEXITCODE -eq 0)
}
if (-not $signedIn -or -not (Get-Command bash -ErrorAction SilentlyContinue)) {
    # The Bicep grant of this provision stands; the check is left to an admin with the Azure CLI and bash.
    Write-Warning "Skipped (needs bash and a signed-in Azure CLI). To check or repair the grant, an admin runs: $command"
    exit 0
}
# azd runs hooks from the project folder, so the relative path works for Git Bash and WSL alike; the values
# go as arguments because WSL does not inherit Windows environment variables.
bash $grant --principal-id "$($env:MANAGED_IDENTITY_PRINCIPAL_ID)" --roles "$($env:GRAPH_APP_ROLES)"
exit $LASTEXITCODE
