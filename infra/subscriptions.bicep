// The Event Grid subscriptions of infra/routing.json, the table the local host routes by. Deployed by the azd
// postdeploy hook (infra/hooks/postdeploy.*) once the functions exist, with the parameters that
// `python -m shared.tools.infra subscriptions` generates from the table; edit the table, not this file.
//
// Each subscription delivers to its function (azureFunction endpoint: Event Grid calls the function's Event Grid
// webhook with its system key, looked up through Azure Resource Manager), one event per request as the
// functions take them, retries up to the table's attempts within its time to live, then dead-letters the
// event as a blob into the dead-letter container, written with the topic's own identity. The table's advanced
// filters (on data.* and envelope keys) pass through as they are: the generator has checked them against Event
// Grid's operators and limits, and the local host applies the same ones.
targetScope = 'resourceGroup'

@description('The function app the subscriptions deliver to.')
param functionAppName string

@description('The storage account holding the dead-letter container.')
param storageAccountName string

@description('Container for events whose delivery attempts or time to live ran out (MLOPS_CONTAINER_DEADLETTER).')
param deadLetterContainerName string

@description('The routing table, as shared/tools/infra.py renders it: name, topicType (system or custom), topicName, function, eventTypes, subjectBeginsWith, subjectEndsWith, advancedFilters (ARM AdvancedFilter objects: operatorType, key, values or value), enableAdvancedFilteringOnArrays, maxDeliveryAttempts, eventTimeToLiveInMinutes.')
param subscriptions array

resource functionApp 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource onSystemTopics 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [
  for s in subscriptions: if (s.topicType == 'system') {
    name: '${s.topicName}/${s.name}'
    properties: {
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: '${functionApp.id}/functions/${s.function}'
          maxEventsPerBatch: 1
          preferredBatchSizeInKilobytes: 64
        }
      }
      eventDeliverySchema: 'EventGridSchema'
      filter: {
        includedEventTypes: s.eventTypes
        subjectBeginsWith: s.subjectBeginsWith
        subjectEndsWith: s.subjectEndsWith
        isSubjectCaseSensitive: true
        advancedFilters: s.advancedFilters
        enableAdvancedFilteringOnArrays: s.enableAdvancedFilteringOnArrays
      }
      retryPolicy: {
        maxDeliveryAttempts: s.maxDeliveryAttempts
        eventTimeToLiveInMinutes: s.eventTimeToLiveInMinutes
      }
      deadLetterWithResourceIdentity: {
        identity: {
          type: 'SystemAssigned'
        }
        deadLetterDestination: {
          endpointType: 'StorageBlob'
          properties: {
            resourceId: storage.id
            blobContainerName: deadLetterContainerName
          }
        }
      }
    }
  }
]

resource onCustomTopics 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = [
  for s in subscriptions: if (s.topicType == 'custom') {
    name: '${s.topicName}/${s.name}'
    properties: {
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: '${functionApp.id}/functions/${s.function}'
          maxEventsPerBatch: 1
          preferredBatchSizeInKilobytes: 64
        }
      }
      eventDeliverySchema: 'EventGridSchema'
      filter: {
        includedEventTypes: s.eventTypes
        subjectBeginsWith: s.subjectBeginsWith
        subjectEndsWith: s.subjectEndsWith
        isSubjectCaseSensitive: true
        advancedFilters: s.advancedFilters
        enableAdvancedFilteringOnArrays: s.enableAdvancedFilteringOnArrays
      }
      retryPolicy: {
        maxDeliveryAttempts: s.maxDeliveryAttempts
        eventTimeToLiveInMinutes: s.eventTimeToLiveInMinutes
      }
      deadLetterWithResourceIdentity: {
        identity: {
          type: 'SystemAssigned'
        }
        deadLetterDestination: {
          endpointType: 'StorageBlob'
          properties: {
            resourceId: storage.id
            blobContainerName: deadLetterContainerName
          }
        }
      }
    }
  }
]

output names array = [for s in subscriptions: '${s.topicName}/${s.name}']
