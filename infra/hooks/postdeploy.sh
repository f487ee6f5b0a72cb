#!/bin/sh
# azd postdeploy: create the Event Grid subscriptions of infra/routing.json (infra/subscriptions.bicep), now that
# the functions they deliver to exist. Uses the Azure CLI, signed in to the azd subscription (az login), and
# Python 3 for `python -m shared.tools.infra`, which renders the routing table into the deployment's parameters.
set -eu
: "${AZURE_RESOURCE_GROUP:?run through azd (azd up / azd deploy) after azd provision}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd (azd up / azd deploy) after azd provision}"
: "${AZURE_SUBSCRIPTION_ID:?run through azd (azd up / azd deploy)}"
command -v az >/dev/null 2>&1 || { echo "postdeploy: the Azure CLI (az) is required, see docs/deploy.md" >&2; exit 1; }
az account show -o none 2>/dev/null || { echo "postdeploy: sign in to the Azure CLI first: az login" >&2; exit 1; }
python=$(command -v python3 || command -v python) || { echo "postdeploy: Python 3 is required" >&2; exit 1; }

params=$(mktemp)
trap 'rm -f "$params"' EXIT
"$python" -m shared.tools.infra subscriptions --out "$params"

# An azureFunction destination must name a function the app has indexed; right after a deployment the
# function list can lag behind for a minute or two.
for fn in $("$python" -m shared.tools.infra functions); do
  tries=0
  until az functionapp function show --subscription "$AZURE_SUBSCRIPTION_ID" -g "$AZURE_RESOURCE_GROUP" \
    -n "$AZURE_FUNCTION_APP_NAME" --function-name "$fn" -o none 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      echo "postdeploy: $AZURE_FUNCTION_APP_NAME still lists no function $fn after 5 minutes;" \
        "see its logs in Application Insights" >&2
      exit 1
    fi
    sleep 10
  done
done

az deployment group create --subscription "$AZURE_SUBSCRIPTION_ID" -g "$AZURE_RESOURCE_GROUP" \
  -n event-subscriptions --template-file infra/subscriptions.bicep --parameters "@$params" -o none
echo "postdeploy: Event Grid subscriptions of infra/routing.json are in place"
