// The Flex Consumption plan and the Python function app, with every app setting the service reads
// (docs/deployment.md lists them). Storage, Key Vault and Application Insights are all reached
// with the user-assigned identity; secrets appear only as Key Vault references. Operators reach
// the ops API with a Microsoft Entra ID token, checked by App Service Authentication.

param name string
param planName string
param location string
param tags object = {}

@description('azd deploys the code to the resource tagged with this service name (azure.yaml).')
param serviceName string = 'api'

param identityId string
param identityClientId string

param storageAccountName string
param deploymentContainerName string

param applicationInsightsConnectionString string

param keyVaultName string

@description('True only while a webhook secret rotation is in progress (the previous secret is in the vault).')
param webhookSecretRotationInProgress bool = false

@description('Root of the Coconut API, e.g. https://<tenant>.coconutcalendar.com/api.')
param coconutApiBaseUrl string

param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Six-field NCRONTAB schedule of the periodic sync.')
param syncTimerSchedule string = '0 */5 * * * *'

@minValue(1)
param syncHorizonDays int = 180

@description('Version id of the sync-data-key secret holding the previous data key, only while a key rotation is finished; empty otherwise.')
param dataKeyPreviousVersion string = ''

@minValue(1)
@maxValue(3650)
param syncContentRetentionDays int = 30
@description('Client id of the ops API app registration (infra/scripts/register-ops-api.sh). Empty: no token is accepted, so the ops API answers 401 to everyone.')
param opsApiClientId string = ''

@description('True: the app joins the virtual network of app/private-network.bicep for its outbound traffic.')
param vnetEnabled bool = false

@description('The subnet delegated to Microsoft.App/environments, when vnetEnabled.')
param appSubnetId string = ''

@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Coconut's webhooks and Graph's notifications arrive from the internet.
    publicNetworkAccess: 'Enabled'
    // Outbound through the virtual network, to the storage and Key Vault private endpoints.
    virtualNetworkSubnetId: vnetEnabled ? appSubnetId : null
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  // A separate child resource so the settings can use the site's own host name.
  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      // Host storage, identity-based; the service's table and queue clients read the same settings.
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      // azure-identity picks the user-assigned identity from AZURE_CLIENT_ID.
      AZURE_CLIENT_ID: identityClientId
      GRAPH_BASE_URL: graphBaseUrl
      GRAPH_AUTH: 'managed_identity'
      COCONUT_API_BASE_URL: coconutApiBaseUrl
      COCONUT_API_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/coconut-api-key/)'
      COCONUT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/coconut-webhook-secret/)'
      // Empty outside a rotation: a reference to a missing secret would resolve to the literal
      // reference text, which the app would then accept as a signing key.
      COCONUT_WEBHOOK_SECRET_PREVIOUS: webhookSecretRotationInProgress ? '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/coconut-webhook-secret-previous/)' : ''
      GRAPH_CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/graph-client-state/)'
      SYNC_TIMER_SCHEDULE: syncTimerSchedule
      SYNC_HORIZON_DAYS: string(syncHorizonDays)
      // The key that encrypts customer content at rest, generated in the vault (key-vault.bicep);
      // during a rotation the previous key is the secret's earlier version.
      SYNC_DATA_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/sync-data-key/)'
      SYNC_DATA_KEY_PREVIOUS: empty(dataKeyPreviousVersion) ? '' : '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/sync-data-key/${dataKeyPreviousVersion})'
      SYNC_CONTENT_RETENTION_DAYS: string(syncContentRetentionDays)
      // Non-empty turns Graph change notifications on.
      PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
      // Identifies the component; with local auth off, ingestion needs the Entra token below.
      // The service exports its own records, spans and metrics (sync/telemetry.py), so the
      // worker is not asked to (no PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY): it would
      // configure a second exporter on the root logger and send every record twice.
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    }
  }

  // App Service Authentication for the ops API. It validates a caller's Microsoft Entra ID token
  // (issued by this tenant for the ops API's app registration), passes the caller's claims to the
  // function as X-MS-CLIENT-PRINCIPAL and removes any such header a caller sends itself; the
  // function checks the app roles (sync/ops/auth.py). Requests without a token still reach the
  // function, because Coconut's webhooks and Graph's notifications cannot send one (they have
  // their own checks); every ops route answers them 401. No client secret: the app only
  // validates tokens, it never signs anyone in.
  resource authentication 'config' = {
    name: 'authsettingsV2'
    properties: {
      platform: {
        enabled: true
      }
      globalValidation: {
        requireAuthentication: false
        unauthenticatedClientAction: 'AllowAnonymous'
      }
      httpSettings: {
        requireHttps: true
      }
      identityProviders: {
        azureActiveDirectory: {
          enabled: !empty(opsApiClientId)
          registration: {
            clientId: opsApiClientId
            openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          }
          validation: {
            // v2 tokens carry the client id, v1 tokens the application id URI.
            allowedAudiences: [
              'api://${opsApiClientId}'
              opsApiClientId
            ]
          }
        }
      }
      login: {
        tokenStore: {
          enabled: false
        }
      }
    }
  }

  // Deployments go through Microsoft Entra ID (azd, func, az); no publishing passwords.
  resource ftpPublishing 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  resource scmPublishing 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
