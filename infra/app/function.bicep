// The function app: Flex Consumption, Python 3.11, running as the user-assigned identity for everything it
// touches (host storage, deployment package, Application Insights, and the MLOPS_* services of the azure backend).
// Every app setting the code reads is set here (tests/unit/test_infra.py checks them against shared/config/).
param name string
param location string
param tags object
param planId string

param identityResourceId string
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param customTopicName string
param workspaceName string
param computeName string
param datastoreName string
@description('Datastore of the inference container, where deployments\' data collectors write.')
param inferenceDatastoreName string
param endpointName string

@description('Container names by role: landing, quarantine, datasets, inference, labels, reports, state, audit, deadletter.')
param containers object

param modelName string
param task string
param targetColumn string
param requireApproval bool
param reconcileSchedule string
param retrainSchedule string
param driftSchedule string
param qualitySchedule string
param retentionSchedule string
param deploymentInstanceType string
param deploymentInstanceCount int

@description('Client id of the Entra app registration approvers get tokens for; empty: no tokens are accepted.')
param approverAppClientId string = ''

param extraAppSettings object = {}
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40

@description('The azd service this app hosts (azure.yaml).')
param serviceName string = 'mlops'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource customTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: customTopicName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

// The Functions host: its storage and telemetry through the identity (no connection strings with keys).
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not app settings on Flex Consumption.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // host.json's telemetryMode OpenTelemetry: the Python worker streams the app's OpenTelemetry logs and traces
  // itself (shared/telemetry.py configures the Azure Monitor distribution), with no duplicate host entries.
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
  // DefaultAzureCredential's managed identity, for any client not given MLOPS_AZURE_CLIENT_ID.
  AZURE_CLIENT_ID: identityClientId
}

// The settings (shared/config/) for MLOPS_BACKEND=azure, wired to the resources (docs/azure.md maps each).
var mlopsSettings = {
  MLOPS_BACKEND: 'azure'
  MLOPS_STORAGE_ACCOUNT_URL: storage.properties.primaryEndpoints.blob
  MLOPS_STORAGE_TOPIC: storage.id
  MLOPS_WORKSPACE_TOPIC: workspace.id
  MLOPS_CUSTOM_TOPIC: customTopic.id
  MLOPS_EVENTS_ENDPOINT: customTopic.properties.endpoint
  MLOPS_AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  MLOPS_AZURE_RESOURCE_GROUP: resourceGroup().name
  MLOPS_AZURE_WORKSPACE: workspace.name
  MLOPS_AZURE_CLIENT_ID: identityClientId
  MLOPS_AZURE_CLOUD: environment().name
  MLOPS_AZURE_COMPUTE: computeName
  MLOPS_AZURE_DATASTORE: datastoreName
  MLOPS_AZURE_INFERENCE_DATASTORE: inferenceDatastoreName
  MLOPS_AZURE_ENDPOINT: endpointName
  MLOPS_AZURE_INSTANCE_TYPE: deploymentInstanceType
  MLOPS_AZURE_INSTANCE_COUNT: string(deploymentInstanceCount)
  MLOPS_CONTAINER_LANDING: containers.landing
  MLOPS_CONTAINER_QUARANTINE: containers.quarantine
  MLOPS_CONTAINER_DATASETS: containers.datasets
  MLOPS_CONTAINER_INFERENCE: containers.inference
  MLOPS_CONTAINER_LABELS: containers.labels
  MLOPS_CONTAINER_REPORTS: containers.reports
  MLOPS_CONTAINER_STATE: containers.state
  MLOPS_CONTAINER_AUDIT: containers.audit
  MLOPS_CONTAINER_DEADLETTER: containers.deadletter
  MLOPS_MODEL_NAME: modelName
  MLOPS_TASK: task
  MLOPS_TARGET_COLUMN: targetColumn
  MLOPS_REQUIRE_APPROVAL: requireApproval ? 'true' : 'false'
  MLOPS_RECONCILE_SCHEDULE: reconcileSchedule
  MLOPS_RETRAIN_SCHEDULE: retrainSchedule
  MLOPS_DRIFT_SCHEDULE: driftSchedule
  MLOPS_QUALITY_SCHEDULE: qualitySchedule
  MLOPS_RETENTION_SCHEDULE: retentionSchedule
  // Approvers' bearer tokens, verified by the app itself on any plan (v2 and v1 issuers of this tenant).
  MLOPS_TOKEN_TENANT_ID: empty(approverAppClientId) ? '' : tenant().tenantId
  MLOPS_TOKEN_AUDIENCES: empty(approverAppClientId) ? '' : '${approverAppClientId},api://${approverAppClientId}'
}

module app 'br/public:avm/res/web/site:0.15.1' = {
  name: 'function-app'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, { 'azd-service-name': serviceName })
    serverFarmResourceId: planId
    managedIdentities: {
      systemAssigned: false
      userAssignedResourceIds: [
        identityResourceId
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    httpsOnly: true
    appSettingsKeyValuePairs: union(mlopsSettings, extraAppSettings, hostSettings)
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' existing = {
  name: name
}

// App Service authentication in front of the app, for the same app registration: defense in depth where the
// plan enforces it. The app does not rely on it: it verifies the bearer token itself (MLOPS_TOKEN_* above) and
// believes the x-ms-client-principal header only with MLOPS_TRUST_PLATFORM_PRINCIPAL=true. Anonymous requests
// still pass, so Event Grid's deliveries (with the function's system key) and function-key calls keep working.
resource auth 'Microsoft.Web/sites/config@2023-12-01' = if (!empty(approverAppClientId)) {
  // checkov reads this child config as if it were a web app; the site is the AVM module's, out of its sight:
  // checkov:skip=CKV_AZURE_13:this is the App Service authentication setting itself
  // checkov:skip=CKV_AZURE_63:a config child, not a site (the site's logs go to Application Insights)
  // checkov:skip=CKV_AZURE_65:a config child, not a site; detailed errors stay off on the site
  // checkov:skip=CKV_AZURE_66:a config child, not a site; failed request tracing is the host's, not this setting's
  // checkov:skip=CKV_AZURE_80:no .NET Framework: a Python function app
  // checkov:skip=CKV_AZURE_88:Flex Consumption has no Azure Files content share
  // checkov:skip=CKV_AZURE_222:Event Grid delivers to the functions over the internet; no virtual network here
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: approverAppClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${approverAppClientId}'
            approverAppClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
  dependsOn: [
    app
  ]
}

output name string = app.outputs.name
output baseUrl string = 'https://${app.outputs.defaultHostname}'
