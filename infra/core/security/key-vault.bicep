// Key Vault in RBAC mode holding the service's three secrets. The function app reads them through
// Key Vault references (app/function-app.bicep), so no secret value is ever an app setting.

param name string
param location string
param tags object = {}

@secure()
@description('HMAC secret Coconut signs its webhooks with. Required.')
@minLength(12)
param coconutWebhookSecret string

@secure()
@description('Previous webhook secret, only while a rotation is in progress; empty otherwise.')
param coconutWebhookSecretPrevious string = ''

@secure()
@description('Bearer key for the Coconut API. Empty keeps the value already in the vault.')
param coconutApiKey string = ''

@secure()
@description('Secret Graph echoes in change notifications (clientState). Required, at most 128 characters.')
@minLength(12)
@maxLength(128)
param graphClientState string

@description('True: reachable only through the private endpoint of app/private-network.bicep; public network access off.')
param vnetEnabled bool = false

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // The deployment writes the secrets through Azure Resource Manager, not the data plane, so
    // it works with public network access off.
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: 'None'
    }
  }

  resource webhookSecret 'secrets' = {
    name: 'coconut-webhook-secret'
    properties: {
      value: coconutWebhookSecret
      contentType: 'text/plain'
    }
  }

  resource webhookSecretPrevious 'secrets' = if (!empty(coconutWebhookSecretPrevious)) {
    name: 'coconut-webhook-secret-previous'
    properties: {
      value: coconutWebhookSecretPrevious
      contentType: 'text/plain'
    }
  }

  // Written only when given, so a redeployment without the key keeps the stored one.
  resource apiKey 'secrets' = if (!empty(coconutApiKey)) {
    name: 'coconut-api-key'
    properties: {
      value: coconutApiKey
      contentType: 'text/plain'
    }
  }

  resource clientState 'secrets' = {
    name: 'graph-client-state'
    properties: {
      value: graphClientState
      contentType: 'text/plain'
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
