# azd postdeploy (Windows): see postdeploy.sh. Creates the Event Grid subscriptions of infra/routing.json once
# the functions they deliver to exist.
$ErrorActionPreference = 'Stop'
foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_SUBSCRIPTION_ID') {
  if (-not [Environment]::GetEnvironmentVariable($name)) { throw "postdeploy: $name is not set; run through azd (azd up / azd deploy)" }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'postdeploy: the Azure CLI (az) is required, see docs/deploy.md' }
az account show -o none 2>$null
if ($LASTEXITCODE -ne 0) { throw 'postdeploy: sign in to the Azure CLI first: az login' }
# A Python 3 that runs: the `py` launcher first, then python3 and python, leaving out the Microsoft Store's
# placeholders (App Execution Aliases under WindowsApps), which open the Store instead of running.
$python = $null
foreach ($candidate in @('py', 'python3', 'python')) {
  $found = Get-Command $candidate -CommandType Application -ErrorAction SilentlyContinue |
    Where-Object { $_.Source -notlike '*\WindowsApps\*' } | Select-Object -First 1
  if (-not $found) { continue }
  $arguments = if ($candidate -eq 'py') { @('-3', '--version') } else { @('--version') }
  & $found.Source @arguments *> $null
  if ($LASTEXITCODE -eq 0) { $python = $found.Source; break }
}
if (-not $python) { throw 'postdeploy: Python 3 is required (the py launcher, python3 or python on PATH)' }
$pythonArgs = if ((Split-Path $python -Leaf) -like 'py.exe') { @('-3') } else { @() }

$params = New-TemporaryFile
try {
  & $python @pythonArgs -m shared.tools.infra subscriptions --out $params.FullName
  if ($LASTEXITCODE -ne 0) { throw 'postdeploy: could not render infra/routing.json' }
  foreach ($function in (& $python @pythonArgs -m shared.tools.infra functions)) {
    $tries = 0
    while ($true) {
      az functionapp function show --subscription $env:AZURE_SUBSCRIPTION_ID -g $env:AZURE_RESOURCE_GROUP `
        -n $env:AZURE_FUNCTION_APP_NAME --function-name $function -o none 2>$null
      if ($LASTEXITCODE -eq 0) { break }
      $tries++
      if ($tries -ge 30) { throw "postdeploy: $($env:AZURE_FUNCTION_APP_NAME) still lists no function $function after 5 minutes" }
      Start-Sleep -Seconds 10
    }
  }
  az deployment group create --subscription $env:AZURE_SUBSCRIPTION_ID -g $env:AZURE_RESOURCE_GROUP `
    -n event-subscriptions --template-file infra/subscriptions.bicep --parameters "@$($params.FullName)" -o none
  if ($LASTEXITCODE -ne 0) { throw 'postdeploy: the event subscriptions deployment failed' }
  Write-Host 'postdeploy: Event Grid subscriptions of infra/routing.json are in place'
}
finally {
  Remove-Item $params.FullName -ErrorAction SilentlyContinue
}
