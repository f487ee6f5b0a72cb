# azd preprovision (Windows): see preprovision.sh. An existing online endpoint is never PUT again, since the PUT
# would reset the traffic split the app set; it is looked up by its resource id, so one the app created is found.
$ErrorActionPreference = 'Stop'
if (-not $env:AZURE_ENV_NAME -or -not $env:AZURE_SUBSCRIPTION_ID) { throw 'preprovision: run through azd (azd up / azd provision)' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'preprovision: the Azure CLI (az) is required, see docs/deploy.md' }
az account show -o none 2>$null
if ($LASTEXITCODE -ne 0) { throw 'preprovision: sign in to the Azure CLI first: az login' }

$exists = 'false'
# Empty before the first provision: nothing can exist yet.
if ($env:AZURE_RESOURCE_GROUP -and $env:AZURE_ML_WORKSPACE_NAME -and $env:AZURE_ML_ENDPOINT_NAME) {
  $id = "/subscriptions/$($env:AZURE_SUBSCRIPTION_ID)/resourceGroups/$($env:AZURE_RESOURCE_GROUP)/providers/" +
    "Microsoft.MachineLearningServices/workspaces/$($env:AZURE_ML_WORKSPACE_NAME)/onlineEndpoints/$($env:AZURE_ML_ENDPOINT_NAME)"
  az resource show --ids $id -o none 2>$null
  if ($LASTEXITCODE -eq 0) { $exists = 'true' }
}
azd env set MLOPS_ENDPOINT_EXISTS $exists
Write-Host "preprovision: online endpoint exists: $exists"
