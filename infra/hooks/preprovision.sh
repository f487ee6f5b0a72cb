#!/bin/sh
# azd preprovision: tell infra/main.bicep whether this environment's online endpoint exists already. An
# existing endpoint is only referenced, never PUT again: the PUT would carry no traffic split and reset the
# one the app set. Uses the Azure CLI, signed in to the azd subscription (az login).
set -eu
: "${AZURE_ENV_NAME:?run through azd (azd up / azd provision)}"
: "${AZURE_SUBSCRIPTION_ID:?run through azd (azd up / azd provision)}"
command -v az >/dev/null 2>&1 || { echo "preprovision: the Azure CLI (az) is required, see docs/deploy.md" >&2; exit 1; }
az account show -o none 2>/dev/null || { echo "preprovision: sign in to the Azure CLI first: az login" >&2; exit 1; }

count=$(az resource list --subscription "$AZURE_SUBSCRIPTION_ID" --tag "azd-env-name=$AZURE_ENV_NAME" \
  --query "length([?type=='Microsoft.MachineLearningServices/workspaces/onlineEndpoints'])" -o tsv)
if [ "${count:-0}" -gt 0 ]; then exists=true; else exists=false; fi
azd env set MLOPS_ENDPOINT_EXISTS "$exists"
echo "preprovision: online endpoint exists: $exists"
