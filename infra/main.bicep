// mlops-functions on Azure: `azd up` provisions this, deploys the function app, then the postdeploy hook creates
// the Event Grid subscriptions of infra/routing.json (infra/subscriptions.bicep). See docs/deploy.md.
//
// One user-assigned identity is the app's, and the training compute's: it reaches storage, Azure ML, the custom
// topic and Application Insights with role assignments (app/rbac.bicep). No keys or connection strings.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource; Flex Consumption and Azure Machine Learning must both be offered there.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user or service principal running azd: it gets blob data access to upload data. Empty: none.')
param principalId string = ''

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Model name in the registry (MLOPS_MODEL_NAME).')
param modelName string = 'mlops-model'

@description('MLOPS_TASK.')
@allowed([
  'regression'
  'binary'
  'multiclass'
])
param task string = 'regression'

@description('Column holding the label (MLOPS_TARGET_COLUMN).')
param targetColumn string = 'target'

@description('Releases wait for an approval before production (MLOPS_REQUIRE_APPROVAL).')
param requireApproval bool = false

@description('NCRONTAB of the reconcile timer (MLOPS_RECONCILE_SCHEDULE).')
param reconcileSchedule string = '0 * * * * *'

@description('NCRONTAB of the scheduled_retrain timer (MLOPS_RETRAIN_SCHEDULE).')
param retrainSchedule string = '0 0 3 * * 0'

@description('NCRONTAB of the drift_check timer (MLOPS_DRIFT_SCHEDULE).')
param driftSchedule string = '0 0 2 * * *'

@description('NCRONTAB of the quality_check timer (MLOPS_QUALITY_SCHEDULE).')
param qualitySchedule string = '0 0 4 * * *'

@description('NCRONTAB of the retention timer (MLOPS_RETENTION_SCHEDULE).')
param retentionSchedule string = '0 30 3 * * *'

@description('VM size of the training compute cluster.')
param computeVmSize string = 'Standard_DS3_v2'

@minValue(1)
@description('Most nodes the training cluster scales to (it scales to zero when idle).')
param computeMaxNodes int = 2

@description('Managed online endpoint name (MLOPS_AZURE_ENDPOINT); unique in the region. Empty: mlops-<token>.')
param onlineEndpointName string = ''

@description('Whether the online endpoint exists already (set by the preprovision hook): an existing one is not PUT again, which would reset its traffic.')
param onlineEndpointExists bool = false

@description('VM size of each online deployment (MLOPS_AZURE_INSTANCE_TYPE).')
param deploymentInstanceType string = 'Standard_DS3_v2'

@minValue(1)
@description('Instances of each online deployment (MLOPS_AZURE_INSTANCE_COUNT).')
param deploymentInstanceCount int = 1

@description('Client id of the Entra app registration approvers get tokens for (api://<client id>, app role MLOps.Approver); the app verifies them itself. Empty: no tokens are accepted (approvals are refused).')
param approverAppClientId string = ''

@description('More app settings (MLOPS_* of shared/config/, e.g. MLOPS_SCHEMA); they override the ones set here.')
param extraAppSettings object = {}

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Most Flex Consumption instances the app scales out to.')
param functionMaximumInstanceCount int = 40

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var names = {
  identity: 'id-${resourceToken}'
  storage: 'st${resourceToken}'
  plan: 'plan-${resourceToken}'
  functionApp: 'func-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  appInsights: 'appi-${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  workspaceStorage: 'stml${resourceToken}'
  registry: 'cr${resourceToken}'
  workspace: 'mlw-${resourceToken}'
  storageTopic: 'evgst-storage-${resourceToken}'
  workspaceTopic: 'evgst-workspace-${resourceToken}'
  customTopic: 'evgt-mlops-${resourceToken}'
  compute: 'cpu-cluster'
  datastore: 'mlopsdatasets'
  inferenceDatastore: 'mlopsinference'
  endpoint: !empty(onlineEndpointName) ? onlineEndpointName : 'mlops-${resourceToken}'
}

// The containers the app uses: the MLOPS_CONTAINER_* defaults of shared/config/ (tests/unit/test_infra.py
// holds the two together). The app does not create containers in Azure.
var containers = {
  landing: 'landing'
  quarantine: 'quarantine'
  datasets: 'datasets'
  inference: 'inference'
  labels: 'labels'
  reports: 'reports'
  state: 'state'
  audit: 'audit'
  deadletter: 'deadletter'
}
var appContainers = [for container in items(containers): { name: container.value }]
// The experiment the training jobs run in: MLOPS_AZURE_EXPERIMENT's default (shared/config/azure.py) unless
// extraAppSettings sets it. The run routes of infra/routing.json filter on it, so the postdeploy hook reads it.
var experimentName = contains(extraAppSettings, 'MLOPS_AZURE_EXPERIMENT') ? string(extraAppSettings.MLOPS_AZURE_EXPERIMENT) : 'mlops'
// Flex Consumption deploys the app from a package in this container.
var deploymentContainer = 'app-package-${take(names.functionApp, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

// The app's storage: its containers, the Functions host's own blobs (AzureWebJobsStorage) and the deployment
// package. Identities only: shared-key access is off.
module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    kind: 'StorageV2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: concat(appContainers, [{ name: deploymentContainer }])
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.14.2' = {
  name: 'log-analytics'
  scope: rg
  params: {
    name: names.logAnalytics
    location: location
    tags: tags
    skuName: 'PerGB2018'
    dataRetention: 30
    features: {
      disableLocalAuth: true
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'app-insights'
  scope: rg
  params: {
    name: names.appInsights
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: names.plan
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
  }
}

// ---- Azure Machine Learning: the workspace, its dependencies, the training cluster, the datastore, the endpoint

module keyVault 'br/public:avm/res/key-vault/vault:0.11.0' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    enableRbacAuthorization: true
    // `azd down --purge` must be able to purge it.
    enablePurgeProtection: false
    softDeleteRetentionInDays: 7
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// The workspace's own store (run snapshots, logs, MLflow artifacts), kept in Azure ML's default access-key mode:
// the app's data lives in the storage account above, which takes identities only.
module workspaceStorage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'workspace-storage'
  scope: rg
  params: {
    name: names.workspaceStorage
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    kind: 'StorageV2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Created here (not lazily by the workspace) so its admin user stays off and the cluster's identity can pull.
module registry 'br/public:avm/res/container-registry/registry:0.9.3' = {
  name: 'registry'
  scope: rg
  params: {
    name: names.registry
    location: location
    tags: tags
    acrSku: 'Basic'
    acrAdminUserEnabled: false
    zoneRedundancy: 'Disabled'
  }
}

module workspace 'br/public:avm/res/machine-learning-services/workspace:0.13.0' = {
  name: 'workspace'
  scope: rg
  params: {
    name: names.workspace
    location: location
    tags: tags
    sku: 'Basic'
    kind: 'Default'
    associatedStorageAccountResourceId: workspaceStorage.outputs.resourceId
    associatedKeyVaultResourceId: keyVault.outputs.resourceId
    associatedApplicationInsightsResourceId: appInsights.outputs.resourceId
    associatedContainerRegistryResourceId: registry.outputs.resourceId
    managedIdentities: {
      systemAssigned: true
    }
    // The function app calls the workspace's APIs from the internet (no virtual network here).
    publicNetworkAccess: 'Enabled'
  }
}

module ml 'app/ml.bicep' = {
  name: 'ml'
  scope: rg
  params: {
    workspaceName: workspace.outputs.name
    location: location
    tags: tags
    identityResourceId: identity.outputs.resourceId
    computeName: names.compute
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
    datastoreName: names.datastore
    storageAccountName: storage.outputs.name
    datasetsContainerName: containers.datasets
    inferenceDatastoreName: names.inferenceDatastore
    inferenceContainerName: containers.inference
    endpointName: names.endpoint
    endpointExists: onlineEndpointExists
  }
}

// ---- Event Grid: the storage account's and the workspace's system topics, and ours for MLOps.* events.
// Each topic dead-letters with its own identity (app/rbac.bicep lets it write the dead-letter container).

module storageTopic 'br/public:avm/res/event-grid/system-topic:0.6.1' = {
  name: 'storage-topic'
  scope: rg
  params: {
    name: names.storageTopic
    location: location
    tags: tags
    source: storage.outputs.resourceId
    topicType: 'Microsoft.Storage.StorageAccounts'
    managedIdentities: {
      systemAssigned: true
    }
  }
}

module workspaceTopic 'br/public:avm/res/event-grid/system-topic:0.6.1' = {
  name: 'workspace-topic'
  scope: rg
  params: {
    name: names.workspaceTopic
    location: location
    tags: tags
    source: workspace.outputs.resourceId
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
    managedIdentities: {
      systemAssigned: true
    }
  }
}

module customTopic 'br/public:avm/res/event-grid/topic:0.8.1' = {
  name: 'custom-topic'
  scope: rg
  params: {
    name: names.customTopic
    location: location
    tags: tags
    // Publishers authenticate with Entra ID (EventGrid Data Sender), never with access keys.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    managedIdentities: {
      systemAssigned: true
    }
  }
}

// ---- The function app and who may do what

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: names.functionApp
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainer
    applicationInsightsName: appInsights.outputs.name
    customTopicName: customTopic.outputs.name
    workspaceName: workspace.outputs.name
    computeName: ml.outputs.computeName
    datastoreName: ml.outputs.datastoreName
    inferenceDatastoreName: ml.outputs.inferenceDatastoreName
    endpointName: ml.outputs.endpointName
    containers: containers
    modelName: modelName
    task: task
    targetColumn: targetColumn
    requireApproval: requireApproval
    reconcileSchedule: reconcileSchedule
    retrainSchedule: retrainSchedule
    driftSchedule: driftSchedule
    qualitySchedule: qualitySchedule
    retentionSchedule: retentionSchedule
    deploymentInstanceType: deploymentInstanceType
    deploymentInstanceCount: deploymentInstanceCount
    approverAppClientId: approverAppClientId
    extraAppSettings: extraAppSettings
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    endpointPrincipalId: ml.outputs.endpointPrincipalId
    // AVM's identity outputs are nullable; each of these resources has its system-assigned identity on
    workspacePrincipalId: workspace.outputs.systemAssignedMIPrincipalId!
    storageTopicPrincipalId: storageTopic.outputs.systemAssignedMIPrincipalId!
    workspaceTopicPrincipalId: workspaceTopic.outputs.systemAssignedMIPrincipalId!
    customTopicPrincipalId: customTopic.outputs.systemAssignedMIPrincipalId!
    deployerPrincipalId: principalId
    storageAccountName: storage.outputs.name
    datasetsContainerName: containers.datasets
    inferenceContainerName: containers.inference
    deadLetterContainerName: containers.deadletter
    workspaceName: workspace.outputs.name
    endpointName: ml.outputs.endpointName
    customTopicName: customTopic.outputs.name
    appInsightsName: appInsights.outputs.name
    registryName: registry.outputs.name
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks and shared/tools/infra.py read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_MLOPS_BASE_URL string = functionApp.outputs.baseUrl
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_ML_WORKSPACE_NAME string = workspace.outputs.name
output AZURE_ML_ENDPOINT_NAME string = ml.outputs.endpointName
output APPLICATIONINSIGHTS_NAME string = appInsights.outputs.name
output STORAGE_SYSTEM_TOPIC_NAME string = storageTopic.outputs.name
output WORKSPACE_SYSTEM_TOPIC_NAME string = workspaceTopic.outputs.name
output CUSTOM_TOPIC_NAME string = customTopic.outputs.name
output MLOPS_CONTAINER_LANDING string = containers.landing
output MLOPS_CONTAINER_LABELS string = containers.labels
output MLOPS_CONTAINER_DEADLETTER string = containers.deadletter
output MLOPS_AZURE_EXPERIMENT string = experimentName
