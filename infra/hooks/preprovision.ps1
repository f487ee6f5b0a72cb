# azd preprovision (Windows): see preprovision.sh. An existing online endpoint is never PUT again, since the PUT
# would reset the traffic split the app set.
$ErrorActionPreference = 'Stop'
if (-not $env:AZURE_ENV_NAME -or -not $env:AZURE_SUBSCRIPTION_ID) { throw 'preprovision: run through azd (azd up / azd provision)' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'preprovision: the Azure CLI (az) is required, see docs/deploy.md' }
az account show -o none 2>$null
if ($LASTEXITCODE -ne 0) { throw 'preprovision: sign in to the Azure CLI first: az login' }

$count = az resource list --subscription $env:AZURE_SUBSCRIPTION_ID --tag "azd-env-name=$($env:AZURE_ENV_NAME)" `
  --query "length([?type=='Microsoft.MachineLearningServices/workspaces/onlineEndpoints'])" -o tsv
if ($LASTEXITCODE -ne 0) { throw 'preprovision: could not list the environment''s resources' }
$exists = if ([int]$count -gt 0) { 'true' } else { 'false' }
azd env set MLOPS_ENDPOINT_EXISTS $exists
Write-Host "preprovision: online endpoint exists: $exists"
