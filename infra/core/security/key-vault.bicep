// Key Vault in RBAC mode holding the service's secrets. The function app reads them through
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

@secure()
@description('The data key as the vault holds it (azd reads it back with secretOrRandomPassword). Anything that is not a key (azd\'s random password on a first deployment, or empty) makes a new key here.')
param syncDataKey string = ''

// Randomness for a new data key, drawn at each deployment and used only when syncDataKey is not a
// key yet. Secure, so that no output can show it.
@secure()
param dataKeySeedA string = newGuid()
@secure()
param dataKeySeedB string = newGuid()

// A data key is the base64 of 32 bytes: 44 characters ending in one '='.
var dataKeyKept = length(syncDataKey) == 44 && endsWith(syncDataKey, '=') && !endsWith(syncDataKey, '==')
// 43 hexadecimal digits and '=' are the base64 of 32 bytes; two GUIDs give them about 166 random
// bits (docs/deployment.md shows how to put a key of 256 random bits in place instead).
var newDataKey = '${take(replace('${dataKeySeedA}${dataKeySeedB}', '-', ''), 43)}='
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

  // SYNC_DATA_KEY: encrypts the customer content the service keeps (docs/data-map.md). Made here
  // on the first deployment and kept by every later one; its value is never a parameter file's,
  // an output's or an app setting's.
  resource dataKey 'secrets' = {
    name: 'sync-data-key'
    properties: {
      value: dataKeyKept ? syncDataKey : newDataKey
      contentType: 'base64 of 32 bytes (AES-256 key)'
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
