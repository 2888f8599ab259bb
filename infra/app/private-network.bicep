// Private networking, deployed only with `vnetEnabled` (main.bicep): a virtual network the function
// app joins for its outbound traffic, and private endpoints through which it reaches the storage
// account's blob, queue and table services and the Key Vault. Those two then turn their public
// network access off (core/storage, core/security), so nothing on the internet reaches them.
//
// Inbound traffic to the app stays public on purpose: Coconut's webhooks and Graph's change
// notifications come from the internet (function key + HMAC, clientState), and the ops API is
// behind App Service Authentication (app/function-app.bicep).

param name string
param location string
param tags object = {}

param storageAccountName string
param keyVaultName string

param addressPrefix string = '10.20.0.0/16'
@description('Subnet the function app joins (Flex Consumption needs it delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.20.1.0/24'
param privateEndpointSubnetPrefix string = '10.20.2.0/24'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          // Graph and the Coconut API are on the internet. Add a NAT gateway instead for a fixed
          // outbound address (e.g. for Coconut's allow list).
          defaultOutboundAccess: true
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

var privateEndpointSubnetId = '${vnet.id}/subnets/private-endpoints'

module blobEndpoint '../core/network/private-endpoint.bicep' = {
  name: 'blobPrivateEndpoint'
  params: {
    name: 'pe-${storageAccountName}-blob'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    virtualNetworkId: vnet.id
    privateLinkServiceId: storage.id
    groupId: 'blob'
    privateDnsZoneName: 'privatelink.blob.${environment().suffixes.storage}'
  }
}

module queueEndpoint '../core/network/private-endpoint.bicep' = {
  name: 'queuePrivateEndpoint'
  params: {
    name: 'pe-${storageAccountName}-queue'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    virtualNetworkId: vnet.id
    privateLinkServiceId: storage.id
    groupId: 'queue'
    privateDnsZoneName: 'privatelink.queue.${environment().suffixes.storage}'
  }
}

module tableEndpoint '../core/network/private-endpoint.bicep' = {
  name: 'tablePrivateEndpoint'
  params: {
    name: 'pe-${storageAccountName}-table'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    virtualNetworkId: vnet.id
    privateLinkServiceId: storage.id
    groupId: 'table'
    privateDnsZoneName: 'privatelink.table.${environment().suffixes.storage}'
  }
}

module vaultEndpoint '../core/network/private-endpoint.bicep' = {
  name: 'vaultPrivateEndpoint'
  params: {
    name: 'pe-${keyVaultName}-vault'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    virtualNetworkId: vnet.id
    privateLinkServiceId: vault.id
    groupId: 'vault'
    // The Key Vault zone has the same name in every public-cloud region.
    privateDnsZoneName: 'privatelink.vaultcore.azure.net'
  }
}

output appSubnetId string = '${vnet.id}/subnets/app'
