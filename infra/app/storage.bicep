// Storage for the Functions host and the app: tables (configuration, connections, jobs), queues
// (export and activity chunks, webhook deliveries, and their poison queues), blob containers (staging, deployment).
// Shared-key access is off: only the managed identity, through RBAC, reaches the data.
param name string
param location string
param tags object
param principalId string

// Every table, queue and container the code uses (tests/unit/test_infra_templates.py checks this list
// against the names in core/ both ways). The app also creates them on first use (the roles below allow
// it), so a missing one would not fail a deployment: it would only hide from operators what the app keeps.
var tables = [
  'Integrations' // CRM cards (core/adapters/storage/integrations_repository.py)
  'DynamicsConfig' // the four setup steps and their history (core/adapters/storage/config_repository.py)
  'DynamicsConnections' // connection status, integration user (core/adapters/storage/connection_repository.py)
  'DynamicsAuthFlows' // pending OAuth auth-code flows, redeemed once
  'Notifications' // in-app notices: reconnect Dynamics, jobs that failed or paused
  'Leases' // token refresh leases (core/adapters/storage/leases.py)
  'DynamicsBudget' // each Dynamics user's shared API budget (core/adapters/dataverse/budget.py)
  'ExportJobs'
  'ExportChunks'
  'ExportRecords'
  'ExportJobsPaused' // workspaces with export chunks paused for the token (the timer resumes them)
  'ExportJobsByTime' // export history: jobs by inverted submission time, finished ones with their status
  'ExportRecordVersions' // the order of automatic exports' changes per record (core/adapters/storage/record_versions.py)
  'ActivityJobs'
  'ActivityChunks'
  'ActivityRecords'
  'ActivityJobsPaused'
  'ActivityJobsByTime'
  'AlertWebhooks' // each workspace's alert webhook: URL and the name of its Key Vault signing secret
  'AlertDeliveries' // webhook deliveries: body, state, attempts (core/adapters/storage/alert_repository.py)
  'AlertDeliveryLog' // one row per delivery attempt, newest first
]
var queues = [
  'dynamics-exports'
  'dynamics-exports-poison' // where the host moves a message after maxDequeueCount deliveries
  'dynamics-activities'
  'dynamics-activities-poison'
  'dynamics-alerts' // webhook delivery attempts (a retry is a message made visible after its backoff)
  'dynamics-alerts-poison'
]
var deploymentContainerName = 'deploymentpackage' // Flex Consumption deployment packages
var containers = [
  deploymentContainerName
  'dynamics-config' // configuration history blocks too large for a table row
  'export-staging' // export chunks' records
  'activity-staging' // activity chunks' events
]

// Built-in role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queues: {
    parent: queueService
    name: queue
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in tables: {
    parent: tableService
    name: table
  }
]

resource roles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [storageBlobDataOwner, storageQueueDataContributor, storageTableDataContributor]: {
    name: guid(account.id, principalId, role)
    scope: account
    properties: {
      principalId: principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

output name string = account.name
output deploymentContainerName string = deploymentContainerName
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
