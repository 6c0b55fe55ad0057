// Azure infrastructure of the Dynamics 365 integration backend (azd layout).
// Flex Consumption Function App (Python 3.11) with a user-assigned managed identity, storage with
// shared-key access off, Key Vault (RBAC) for the encrypted token caches, the client secret and the RSA
// key that wraps the caches' data keys, Application Insights on Log Analytics, and the role assignments
// the identity needs: Storage Blob Data Owner, Queue Data Contributor, Table Data Contributor
// (storage.bicep), Key Vault Secrets Officer on the vault and Key Vault Crypto Service Encryption User on
// the wrapping key only (keyvault.bicep), Monitoring Metrics Publisher (monitoring.bicep). FTP and
// basic-auth publishing are off (api.bicep). Whoever runs azd (AZURE_PRINCIPAL_ID) is also a Key Vault
// Secrets Officer on the vault, to store the client secret there (RBAC mode lets no one else read or
// write secrets).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to name resources.')
param environmentName string

@minLength(1)
@description('Azure region of every resource.')
param location string

@description('JWKS URL of the platform that signs caller tokens (RS256).')
param platformJwtJwksUrl string

@description('Issuer (`iss`) of the platform caller tokens.')
param platformJwtIssuer string

@description('Audience (`aud`) of the platform caller tokens.')
param platformJwtAudience string = 'dynamics-integration'

@description('Audience (`aud`) of the platform backend\'s own (service) tokens; differs from platformJwtAudience.')
param platformJwtServiceAudience string = 'dynamics-integration-service'

@description('Frontend page the OAuth callback redirects to.')
param frontendUrl string

@description('Entra ID application (client) id of the multi-tenant Dynamics integration app.')
param dynamicsClientId string

@description('Entra ID authority for the auth-code flow.')
param dynamicsAuthority string = 'https://login.microsoftonline.com/organizations'

@description('Allowed Dynamics environment host patterns (comma-separated shell patterns).')
param dynamicsAllowedHostPatterns string = '*.crm.dynamics.com,*.crm?.dynamics.com,*.crm??.dynamics.com,*.crm.microsoftdynamics.us'

@description('Upgrading a deployment whose token caches were sealed under the secret TOKEN-ENCRYPTION-KEY: that secret\'s name, so they still open (each is resealed under the vault key at its next refresh). Empty for new deployments.')
param legacyTokenEncryptionKeySecret string = ''

@description('Comma-separated public IPv4 ranges (CIDR) allowed to call the Function App: the platform backend and the admins\' browsers, which open the OAuth callback. Empty: any address.')
param allowedIpRanges string = ''
@description('Comma-separated origins allowed to call the API from a browser (the platform web app).')
param corsAllowedOrigins string = ''

@description('Object id of whoever runs azd (azd fills AZURE_PRINCIPAL_ID): made a Key Vault Secrets Officer on the vault so they can store the app secrets. Empty: no role.')
param principalId string = ''

@description('Type of that principal (azd fills AZURE_PRINCIPAL_TYPE): User, or ServicePrincipal when azd is logged in with a client id, as in pipelines.')
@allowed(['User', 'ServicePrincipal'])
param principalType string = 'User'

var tags = { 'azd-env-name': environmentName }
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { name: 'id-${token}', location: location, tags: tags }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: 'func-${token}'
    planName: 'plan-${token}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    platformJwtJwksUrl: platformJwtJwksUrl
    platformJwtIssuer: platformJwtIssuer
    platformJwtAudience: platformJwtAudience
    platformJwtServiceAudience: platformJwtServiceAudience
    frontendUrl: frontendUrl
    dynamicsClientId: dynamicsClientId
    dynamicsAuthority: dynamicsAuthority
    dynamicsAllowedHostPatterns: dynamicsAllowedHostPatterns
    tokenWrappingKeyId: keyVault.outputs.tokenWrappingKeyId
    legacyTokenEncryptionKeySecret: legacyTokenEncryptionKeySecret
    allowedIpRanges: allowedIpRanges
    corsAllowedOrigins: corsAllowedOrigins
  }
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_URI string = api.outputs.uri
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT string = storage.outputs.name
