// What the app's Azure ML adapters use in the workspace (docs/azure.md): the compute cluster the training jobs
// run on, as the app's user-assigned identity; a credential-less datastore of the datasets container; and the
// managed online endpoint the releases deploy to.
param workspaceName string
param location string
param tags object

@description('Resource id of the user-assigned identity the cluster runs jobs as (the app\'s, MLOPS_AZURE_CLIENT_ID).')
param identityResourceId string

param computeName string
param computeVmSize string
param computeMaxNodes int

param datastoreName string
param storageAccountName string
param datasetsContainerName string

@description('Datastore of the inference container: where the data collector writes what deployments serve.')
param inferenceDatastoreName string
param inferenceContainerName string

param endpointName string

@description('The endpoint exists already: it is only referenced, since a PUT without its traffic would reset it.')
param endpointExists bool

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource compute 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: computeName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    computeType: 'AmlCompute'
    description: 'Training jobs (python -m shared.training), run as the app identity'
    disableLocalAuth: true
    properties: {
      vmSize: computeVmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: computeMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT120S'
      }
      remoteLoginPortPublicAccess: 'Disabled'
    }
  }
}

// No credentials: jobs read and write the datasets container with their identity (the storage account takes no
// keys), which is why the cluster runs as an identity with blob data access.
resource datastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: datastoreName
  properties: {
    datastoreType: 'AzureBlob'
    description: 'The datasets container of the app storage (MLOPS_CONTAINER_DATASETS): job inputs and outputs'
    accountName: storageAccountName
    containerName: datasetsContainerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: {
      credentialsType: 'None'
    }
    // The studio's previews and the service's own reads of the datastore go as the workspace's identity, which
    // reads the datasets container (app/rbac.bicep); jobs still use their own.
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
  }
}

// Where every deployment's data collector writes (model_inputs, model_outputs): the inference container, which
// the drift and quality checks read. Credential-less too: the endpoint's identity writes (app/rbac.bicep).
resource inferenceDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: inferenceDatastoreName
  properties: {
    datastoreType: 'AzureBlob'
    description: 'The inference container of the app storage (MLOPS_CONTAINER_INFERENCE): captured traffic'
    accountName: storageAccountName
    containerName: inferenceContainerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: {
      credentialsType: 'None'
    }
  }
}

// Key auth, as the app's endpoints adapter creates it; its system-assigned identity loads models from the datasets
// container (app/rbac.bicep). Deployments and traffic belong to the app, so an existing endpoint is left alone.
resource newEndpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' = if (!endpointExists) {
  parent: workspace
  name: endpointName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    authMode: 'Key'
    description: 'Served by mlops-functions'
    publicNetworkAccess: 'Enabled'
  }
}

resource existingEndpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' existing = if (endpointExists) {
  parent: workspace
  name: endpointName
}

output computeName string = compute.name
output datastoreName string = datastore.name
output inferenceDatastoreName string = inferenceDatastore.name
output endpointName string = endpointName
output endpointPrincipalId string = endpointExists ? existingEndpoint.identity.principalId : newEndpoint.identity.principalId
