// Log Analytics + workspace-based Application Insights (OpenTelemetry export target of the app).
// Local (instrumentation-key) ingestion is off: the app's exporter authenticates with the managed identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING in api.bicep, honoured by azure-monitor-opentelemetry and the
// Functions host), which needs Monitoring Metrics Publisher on this component.
param logAnalyticsName string
param appInsightsName string
param location string
param tags object
param principalId string

// Built-in role definition id (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

output connectionString string = appInsights.properties.ConnectionString
output name string = appInsights.name
