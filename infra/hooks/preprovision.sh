#!/bin/sh
# azd preprovision: tell infra/main.bicep whether this environment's online endpoint exists already. An
# existing endpoint is only referenced, never PUT again: the PUT would carry no traffic split and reset the
# one the app set. The endpoint is looked up by its resource id (the names the last provision output), so one
# the app created itself, without azd's tags, is found too. Uses the Azure CLI, signed in to the azd
# subscription (az login).
set -eu
: "${AZURE_ENV_NAME:?run through azd (azd up / azd provision)}"
: "${AZURE_SUBSCRIPTION_ID:?run through azd (azd up / azd provision)}"
command -v az >/dev/null 2>&1 || { echo "preprovision: the Azure CLI (az) is required, see docs/deploy.md" >&2; exit 1; }
az account show -o none 2>/dev/null || { echo "preprovision: sign in to the Azure CLI first: az login" >&2; exit 1; }

exists=false
# Empty before the first provision: nothing can exist yet.
if [ -n "${AZURE_RESOURCE_GROUP:-}" ] && [ -n "${AZURE_ML_WORKSPACE_NAME:-}" ] && [ -n "${AZURE_ML_ENDPOINT_NAME:-}" ]; then
  id="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$AZURE_RESOURCE_GROUP/providers/Microsoft.MachineLearningServices/workspaces/$AZURE_ML_WORKSPACE_NAME/onlineEndpoints/$AZURE_ML_ENDPOINT_NAME"
  if az resource show --ids "$id" -o none 2>/dev/null; then exists=true; fi
fi
azd env set MLOPS_ENDPOINT_EXISTS "$exists"
echo "preprovision: online endpoint exists: $exists"
