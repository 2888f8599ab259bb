// One private endpoint for one service of a resource (a storage account's blob service, a Key
// Vault, ...), with the private DNS zone that makes the service's usual host name resolve to the
// endpoint's private address inside the virtual network.

param name string
param location string
param tags object = {}

@description('Subnet the endpoint gets its private address from.')
param subnetId string
@description('Virtual network whose DNS uses the zone.')
param virtualNetworkId string
@description('The resource behind the endpoint.')
param privateLinkServiceId string
@description('Which of its services: blob, queue, table, vault, ...')
param groupId string
@description('privatelink.<service zone>, e.g. privatelink.blob.core.windows.net.')
param privateDnsZoneName string

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: privateDnsZoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: zone
  name: '${last(split(virtualNetworkId, '/'))}-link'
  location: 'global'
  tags: tags
  properties: {
    virtualNetwork: {
      id: virtualNetworkId
    }
    registrationEnabled: false
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: privateLinkServiceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }

  resource zoneGroup 'privateDnsZoneGroups' = {
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: groupId
          properties: {
            privateDnsZoneId: zone.id
          }
        }
      ]
    }
  }
}

output id string = endpoint.id
