// Who may do what: the role assignments of docs/azure.md, each the narrowest built-in role that works, at the
// narrowest scope, named guid(scope, principal, role) so a redeployment finds the same assignment.
// The training cluster runs as the app's identity (app/ml.bicep), so the app's assignments are the cluster's too.
@description('Principal (object) id of the user-assigned identity of the app and the training cluster.')
param identityPrincipalId string

@description('Principal id of the online endpoint\'s system-assigned identity.')
param endpointPrincipalId string

@description('Principal id of the Azure ML workspace\'s system-assigned identity (its datastore access).')
param workspacePrincipalId string

@description('Principal ids of the topics\' system-assigned identities, which write dead letters.')
param storageTopicPrincipalId string
param workspaceTopicPrincipalId string
param customTopicPrincipalId string

@description('Object id of whoever runs azd, to upload data with `az storage blob upload --auth-mode login`; empty: none.')
param deployerPrincipalId string = ''

param storageAccountName string
param datasetsContainerName string
param inferenceContainerName string
param deadLetterContainerName string
param workspaceName string
param endpointName string
param customTopicName string
param appInsightsName string
param registryName string

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource datasetsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: datasetsContainerName
}

resource inferenceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: inferenceContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' existing = {
  parent: workspace
  name: endpointName
}

resource customTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: customTopicName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

// ---- The app's identity (and the training cluster's)

// The app's blobs (landing to audit), and the Functions host's: AzureWebJobsStorage with an identity needs
// Storage Blob Data Owner (Azure Functions' documented role for host storage), which includes Contributor's
// data actions that the app and the training jobs need.
resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mlops app and training jobs: app containers, host storage, deployment package'
  }
}

// Jobs, environments, code, models, endpoints, deployments and endpoint keys; MLflow tracking from the jobs.
resource appWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identityPrincipalId, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mlops app and training jobs: Azure ML jobs, registry, endpoints'
  }
}

resource appTopic 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(customTopic.id, identityPrincipalId, roles.eventGridDataSender)
  scope: customTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mlops app: publishes MLOps.* events'
  }
}

// Application Insights takes Entra ID telemetry only (local auth is off).
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mlops app: sends telemetry with its identity'
  }
}

// The canary reads the endpoint's request counts and latency from Azure Monitor.
resource appEndpointMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(endpoint.id, identityPrincipalId, roles.monitoringReader)
  scope: endpoint
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringReader)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mlops app: the canary reads the endpoint metrics'
  }
}

// The training cluster pulls the environment's image; the registry's admin user is off.
resource computeRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'training cluster: pulls the training environment image'
  }
}

// ---- The workspace's identity

// The datasets datastore's service-side reads (studio previews, data profiling) go as the workspace's identity.
resource workspaceDatasets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(datasetsContainer.id, workspacePrincipalId, roles.storageBlobDataReader)
  scope: datasetsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: workspacePrincipalId
    principalType: 'ServicePrincipal'
    description: 'Azure ML workspace: reads the credential-less datasets datastore'
  }
}

// ---- The online endpoint's identity

// Deployments load the model from the training job's output, in the datasets container.
resource endpointDatasets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(datasetsContainer.id, endpointPrincipalId, roles.storageBlobDataReader)
  scope: datasetsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: endpointPrincipalId
    principalType: 'ServicePrincipal'
    description: 'online endpoint: loads models from the training jobs output'
  }
}

// Every deployment's data collector writes what it serves (model_inputs, model_outputs) to the inference container.
resource endpointCapture 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inferenceContainer.id, endpointPrincipalId, roles.storageBlobDataContributor)
  scope: inferenceContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: endpointPrincipalId
    principalType: 'ServicePrincipal'
    description: 'online endpoint: the data collector writes captured traffic'
  }
}

// ---- The topics' identities: dead letters go to the dead-letter container, written with the topic's identity

resource storageTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, storageTopicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: storageTopicPrincipalId
    principalType: 'ServicePrincipal'
    description: 'storage system topic: writes dead letters'
  }
}

resource workspaceTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, workspaceTopicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: workspaceTopicPrincipalId
    principalType: 'ServicePrincipal'
    description: 'workspace system topic: writes dead letters'
  }
}

resource customTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, customTopicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: customTopicPrincipalId
    principalType: 'ServicePrincipal'
    description: 'custom topic: writes dead letters'
  }
}

// ---- Whoever runs azd: uploads data and reads results with their own sign-in (no keys)

resource deployerStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: deployerPrincipalId
    description: 'the azd user: uploads data, reads reports and the audit log'
  }
}
