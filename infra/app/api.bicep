// The Function App on a Flex Consumption (FC1) plan, Python 3.11, running as the user-assigned identity.
// Every app setting the code reads (core/settings.py SETTING_SPECS) is provisioned here; secrets are
// Key Vault references resolved with the same identity. tests/unit/test_settings_documented.py checks
// this file names every setting.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param appInsightsConnectionString string
param keyVaultUri string
param platformJwtJwksUrl string
param platformJwtIssuer string
param platformJwtAudience string
param platformJwtServiceAudience string
param frontendUrl string
param dynamicsClientId string
param dynamicsAuthority string
param dynamicsAllowedHostPatterns string
@description('Versionless id of the Key Vault key that wraps each token cache\'s data key (TOKEN_WRAPPING_KEY_ID).')
param tokenWrappingKeyId string
@description('Name of the vault secret holding the key-encryption key of caches sealed before the vault key (TOKEN_ENCRYPTION_KEY); empty: none.')
param legacyTokenEncryptionKeySecret string = ''
@description('Comma-separated public IPv4 ranges (CIDR) allowed to call the app; empty: any address (callers still need a token).')
param allowedIpRanges string = ''
@description('Comma-separated origins of the platform web app that embeds the setup window and calls the API from the browser (the platform CORS of the app); empty: same origin only.')
param corsAllowedOrigins string = ''

var vaultName = split(split(keyVaultUri, '//')[1], '.')[0]
var allowedRanges = empty(allowedIpRanges) ? [] : map(split(allowedIpRanges, ','), range => trim(range))
var corsOrigins = empty(corsAllowedOrigins) ? [] : map(split(corsAllowedOrigins, ','), origin => trim(origin))

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // The Functions platform answers CORS preflights and marks answers for these origins (Host.CORS in
      // local.settings.json is the devhost's copy of it); bearer tokens, no cookies: no credentials.
      cors: {
        allowedOrigins: corsOrigins
        supportCredentials: false
      }
      // Optional inbound restriction: only the listed ranges reach the app (and its scm site, same rules).
      // The OAuth callback is opened by the admin's browser, so their addresses must be in the list too.
      ipSecurityRestrictionsDefaultAction: empty(allowedRanges) ? 'Allow' : 'Deny'
      ipSecurityRestrictions: [
        for (range, i) in allowedRanges: {
          name: 'allowed-${i}'
          ipAddress: range
          action: 'Allow'
          priority: 100 + i
        }
      ]
      scmIpSecurityRestrictionsUseMain: true
      appSettings: [
        // Storage through the managed identity (no keys anywhere; no AzureWebJobsStorage connection string).
        // The host and the queue triggers (connection "AzureWebJobsStorage") read the *ServiceUri,
        // credential and clientId settings; the app's own clients read the same *ServiceUri settings and
        // take the identity from AZURE_CLIENT_ID (DefaultAzureCredential).
        { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: blobEndpoint }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: queueEndpoint }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: tableEndpoint }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        // Telemetry: connection string plus Entra ID auth as the identity (local auth is off on the component),
        // read by the host and by azure-monitor-opentelemetry in the worker. host.json sets
        // "telemetryMode": "OpenTelemetry"; PYTHON_ENABLE_OPENTELEMETRY lets the worker stream its own
        // OpenTelemetry logs (no duplicate host-level copies) and continue the host's trace context. The
        // app configures the exporter itself (core/observability.py): PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
        // would make the worker configure a second one, so it is not set.
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'PYTHON_ENABLE_OPENTELEMETRY', value: 'true' }
        // Caller identity (platform JWTs). HS256 is for local development only: never enabled here.
        { name: 'PLATFORM_JWT_JWKS_URL', value: platformJwtJwksUrl }
        { name: 'PLATFORM_JWT_PUBLIC_KEY', value: '' } // JWKS is used; a PEM here would replace it
        { name: 'PLATFORM_JWT_ISSUER', value: platformJwtIssuer }
        { name: 'PLATFORM_JWT_AUDIENCE', value: platformJwtAudience }
        { name: 'PLATFORM_JWT_SERVICE_AUDIENCE', value: platformJwtServiceAudience }
        { name: 'PLATFORM_JWT_ALLOW_DEV_HS256', value: 'false' }
        // Dynamics connection (OAuth 2.0 through MSAL).
        { name: 'DYNAMICS_CLIENT_ID', value: dynamicsClientId }
        { name: 'DYNAMICS_CLIENT_SECRET', value: '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=DYNAMICS-CLIENT-SECRET)' }
        { name: 'DYNAMICS_AUTHORITY', value: dynamicsAuthority }
        { name: 'DYNAMICS_REDIRECT_URI', value: 'https://${name}.azurewebsites.net/api/dynamics/oauth/callback' }
        { name: 'DYNAMICS_ALLOWED_HOST_PATTERNS', value: dynamicsAllowedHostPatterns }
        { name: 'FRONTEND_URL', value: frontendUrl }
        { name: 'KEY_VAULT_URL', value: keyVaultUri }
        // The key-encryption key is a Key Vault key: data keys are wrapped and unwrapped inside the vault.
        { name: 'TOKEN_WRAPPING_KEY_ID', value: tokenWrappingKeyId }
        // Only to open caches sealed under the former secret key (each is resealed at its next refresh).
        { name: 'TOKEN_ENCRYPTION_KEY', value: empty(legacyTokenEncryptionKeySecret) ? '' : '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=${legacyTokenEncryptionKeySecret})' }
        { name: 'TOKEN_REFRESH_SCHEDULE', value: '0 */15 * * * *' }
        { name: 'TOKEN_PROACTIVE_REFRESH_DAYS', value: '7' }
        { name: 'TOKEN_EXPIRY_MARGIN_MINUTES', value: '20' }
        { name: 'TOKEN_REFRESH_CONCURRENCY', value: '8' }
        // Exports.
        { name: 'DYNAMICS_MAX_CONCURRENCY', value: '16' }
        { name: 'EXPORT_CHUNK_SIZE', value: '500' }
        { name: 'EXPORT_MAX_ATTEMPTS', value: '5' }
        { name: 'JOBS_MAX_ACTIVE_PER_WORKSPACE', value: '20' }
        { name: 'AUTOMATIC_EXPORT_WINDOW_SECONDS', value: '30' }
        // Retention of job results and summaries.
        { name: 'RESULTS_RETENTION_DAYS', value: '30' }
        { name: 'JOB_SUMMARY_RETENTION_DAYS', value: '400' }
        { name: 'RETENTION_SCHEDULE', value: '0 */10 * * * *' }
        { name: 'RETENTION_MAX_DELETES_PER_RUN', value: '20000' }
        // Activities (engagement events).
        { name: 'ACTIVITY_CHUNK_SIZE', value: '1000' }
        { name: 'ACTIVITY_LINKEDIN_TABLE', value: 'auto' }
        // Shared Dataverse budget of a workspace across instances (service protection limits).
        { name: 'DYNAMICS_BUDGET_ENABLED', value: 'true' }
        { name: 'DYNAMICS_BUDGET_SLOTS', value: '4' }
        { name: 'DYNAMICS_LIMIT_REQUESTS', value: '6000' }
        { name: 'DYNAMICS_LIMIT_EXECUTION_S', value: '1200' }
        { name: 'DYNAMICS_LIMIT_CONCURRENT', value: '52' }
        { name: 'DYNAMICS_LIMIT_WINDOW_S', value: '300' }
        // Alerts: webhook deliveries (the signing secrets are Key Vault secrets the app creates at run time).
        { name: 'ALERT_WEBHOOK_MAX_ATTEMPTS', value: '8' }
        { name: 'ALERT_WEBHOOK_BACKOFF_S', value: '30' }
        { name: 'ALERT_WEBHOOK_TIMEOUT_S', value: '10' }
        { name: 'ALERT_WEBHOOK_ALLOW_LOCAL', value: 'false' } // local development only: never on Azure
      ]
    }
  }
}

// No FTP or basic-auth (user/password) publishing: azd deploys through the identity-based blob package.
// https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

output name string = app.name
output uri string = 'https://${app.properties.defaultHostName}'
