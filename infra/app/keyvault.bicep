// Key Vault (RBAC) holding each workspace's sealed MSAL token cache (secrets the app writes and deletes),
// the Entra app's client secret (DYNAMICS-CLIENT-SECRET) and the key-encryption key as a Key Vault KEY
// (RSA, wrapKey/unwrapKey only): the app wraps each cache's data key with it through the vault and never
// sees the key's private material (Key Vault does not release non-exportable keys).
//
// Roles of the app identity, each at the narrowest scope Key Vault RBAC allows
// (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles#security,
// https://learn.microsoft.com/azure/key-vault/general/rbac-guide):
// - Key Vault Crypto Service Encryption User on the KEY only: read key metadata, wrap, unwrap -- no
//   encrypt/decrypt/sign, no other key, no key management.
// - Key Vault Secrets Officer on the vault: the app creates and deletes one cache secret per workspace at
//   run time, and a role can only be scoped to secrets that already exist, so the vault is the narrowest
//   scope for writing them. That role also lets the app read DYNAMICS-CLIENT-SECRET (its Key Vault
//   reference); it grants nothing on keys.
// In RBAC mode nobody else can touch secrets, not even the subscription owner who provisioned the vault, so
// the person (or pipeline) running azd is made a Key Vault Secrets Officer too: they store
// DYNAMICS-CLIENT-SECRET after `azd up` (README, Deploy to Azure). The key itself is created here by ARM
// (control plane), which needs no data role.
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
var keyVaultCryptoServiceEncryptionUser = 'e147488a-f6f5-4113-8e2d-b22465e65bf6'
var tokenWrappingKeyName = 'token-wrapping-key'

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
    // Public endpoint kept: a Flex Consumption app without VNet integration calls from shared outbound
    // addresses no IP rule can name, and App Service is not a trusted service that bypasses the firewall.
    publicNetworkAccess: 'Enabled'
  }
}

// ARM creates the first version when the key does not exist and otherwise returns it unchanged (no new
// version on a re-run): https://learn.microsoft.com/rest/api/keyvault/keyvault/keys/create-if-not-exist
// RSA because a standard vault holds no symmetric (oct) keys; the app wraps with RSA-OAEP-256.
resource tokenWrappingKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: tokenWrappingKeyName
  properties: {
    kty: 'RSA'
    keySize: 3072
    keyOps: ['wrapKey', 'unwrapKey']
    attributes: { enabled: true }
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

resource keyWrapper 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(tokenWrappingKey.id, principalId, keyVaultCryptoServiceEncryptionUser)
  scope: tokenWrappingKey
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      keyVaultCryptoServiceEncryptionUser
    )
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
// Versionless: the app wraps with the key's current version and unwraps with the version each cache names.
output tokenWrappingKeyId string = tokenWrappingKey.properties.keyUri
