// Key Vault (RBAC) holding each workspace's encrypted MSAL token cache and the app's secrets
// (DYNAMICS-CLIENT-SECRET, TOKEN-ENCRYPTION-KEY). The app writes and deletes token-cache secrets,
// so its identity is a Key Vault Secrets Officer. In RBAC mode nobody else can touch secrets, not even
// the subscription owner who provisioned the vault, so the person (or pipeline) running azd is made a
// Key Vault Secrets Officer too: they store the two app secrets after `azd up` (README, Deploy to Azure).
param name string
param location string
param tags object
@description('Object id of the user-assigned identity the app runs as.')
param principalId string
@description('Object id of whoever runs azd (AZURE_PRINCIPAL_ID); empty: no role for them.')
param operatorPrincipalId string = ''
@description('User when a person runs azd; ServicePrincipal when azd is logged in with a client id (pipelines).')
@allowed(['User', 'ServicePrincipal'])
param operatorPrincipalType string = 'User'

var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output uri string = vault.properties.vaultUri
output name string = vault.name
