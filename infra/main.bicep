// Coconut ⇄ Microsoft 365 calendar sync: everything the function app needs, in one resource group.
//
// Resource-group scope (not subscription scope) so that the same template serves `azd up` and
// `az deployment group create`, and so that whoever deploys needs rights on one resource group
// only — what a bank's platform team usually hands out. See docs/deployment.md.
//
// Microsoft Graph permissions and the Exchange Online mailbox scope are a tenant-administrator
// step outside this template (infra/scripts/), because they need directory and Exchange roles that
// a resource-group deployer does not hold.

targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd: AZURE_ENV_NAME); seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@minLength(1)
@description('Root of the Coconut API, e.g. https://<tenant>.coconutcalendar.com/api (azd: COCONUT_API_BASE_URL).')
param coconutApiBaseUrl string

@secure()
@description('HMAC secret for Coconut webhooks; give the same value to Coconut.')
param coconutWebhookSecret string

@secure()
@description('The previous webhook secret, only while a rotation is in progress.')
param coconutWebhookSecretPrevious string = ''

@secure()
@description('Coconut API key. Empty keeps the value already in Key Vault.')
param coconutApiKey string = ''

@secure()
@description('Secret Graph echoes in change notifications (clientState), at most 128 characters.')
param graphClientState string

@secure()
@description('The data key already in the vault, read back by azd (secretOrRandomPassword); on a first deployment anything that is not a key makes a new one in the vault. Never written in a file.')
param syncDataKey string = ''

@description('Version id of the sync-data-key secret holding the previous data key, only while a key rotation is finished (docs/operations.md); empty otherwise.')
param dataKeyPreviousVersion string = ''

@minValue(1)
@maxValue(3650)
@description('Days the customer content of an appointment or absence is kept after it ended (docs/data-map.md).')
param syncContentRetentionDays int = 30

@description('Six-field NCRONTAB schedule of the periodic sync.')
param syncTimerSchedule string = '0 */5 * * * *'

@description('How many days ahead appointments and busy time are kept in step.')
param syncHorizonDays int = 180

@description('Object id of the deploying user or service principal (azd: AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer on the vault. Empty grants nothing.')
param deployerPrincipalId string = ''

@description('E-mail address for alerts; empty creates the alert rules without notifications.')
param alertEmailAddress string = ''

@description('Average webhook-to-Exchange latency target in milliseconds; above it an alert fires.')
param webhookToExchangeTargetMs int = 60000

@description('Client id of the ops API app registration (azd: OPS_API_CLIENT_ID), made by infra/scripts/register-ops-api.sh. Empty: the ops API accepts no caller until it is set.')
param opsApiClientId string = ''

@description('True (azd: VNET_ENABLED) puts the function app in a virtual network and reaches storage and Key Vault only through private endpoints, with their public network access off.')
param vnetEnabled bool = false

@description('Optional name overrides; empty derives unique names from the resource group and environment.')
param functionAppName string = ''
param storageAccountName string = ''
param keyVaultName string = ''

var resourceToken = toLower(uniqueString(resourceGroup().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'coconut-m365-sync'
}
var appName = !empty(functionAppName) ? functionAppName : 'func-${resourceToken}'
var deploymentContainerName = 'app-package'

// Names the service uses (sync/names.py); tests/infra checks the two lists agree.
var queueNames = [
  'staff-sync'
  'staff-sync-poison'
]
var tableNames = [
  'items'
  'staffitems'
  'staff'
]

module identity 'core/identity/user-assigned-identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage/storage-account.bicep' = {
  name: 'storage'
  params: {
    name: !empty(storageAccountName) ? storageAccountName : 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    tableNames: tableNames
    vnetEnabled: vnetEnabled
  }
}

module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'core/security/key-vault.bicep' = {
  name: 'keyVault'
  params: {
    name: !empty(keyVaultName) ? keyVaultName : 'kv-${resourceToken}'
    location: location
    tags: tags
    coconutWebhookSecret: coconutWebhookSecret
    coconutWebhookSecretPrevious: coconutWebhookSecretPrevious
    coconutApiKey: coconutApiKey
    graphClientState: graphClientState
    syncDataKey: syncDataKey
    vnetEnabled: vnetEnabled
  }
}

// Only with vnetEnabled: the virtual network and the private endpoints of storage and Key Vault.
module privateNetwork 'app/private-network.bicep' = if (vnetEnabled) {
  name: 'privateNetwork'
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    deployerPrincipalId: deployerPrincipalId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: 'functionApp'
  params: {
    name: appName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyVault.outputs.name
    webhookSecretRotationInProgress: !empty(coconutWebhookSecretPrevious)
    coconutApiBaseUrl: coconutApiBaseUrl
    syncTimerSchedule: syncTimerSchedule
    syncHorizonDays: syncHorizonDays
    dataKeyPreviousVersion: dataKeyPreviousVersion
    syncContentRetentionDays: syncContentRetentionDays
    opsApiClientId: opsApiClientId
    vnetEnabled: vnetEnabled
    // Guarded: the module's outputs exist only when it is deployed.
    appSubnetId: vnetEnabled ? privateNetwork.outputs.appSubnetId : ''
  }
  // Key Vault references and identity-based storage resolve when the settings are applied, so
  // the roles (and, with vnetEnabled, the private endpoints) must exist first.
  dependsOn: [
    rbac
  ]
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    namePrefix: appName
    alertEmailAddress: alertEmailAddress
    webhookToExchangeTargetMs: webhookToExchangeTargetMs
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
// The tenant administrator needs these two for infra/scripts (Graph and Exchange permissions).
output FUNCTION_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output FUNCTION_APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// What the ops command line needs (python -m sync.ops reads these two names).
output SYNC_OPS_URL string = 'https://${functionApp.outputs.defaultHostName}'
output SYNC_OPS_AUDIENCE string = empty(opsApiClientId) ? '' : 'api://${opsApiClientId}'
// What Coconut needs (plus a function key and the webhook secret; see docs/deployment.md).
output COCONUT_WEBHOOK_URL string = 'https://${functionApp.outputs.defaultHostName}/api/coconut/webhooks'
