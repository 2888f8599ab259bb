// The one identity the function app uses for everything: host storage, the deployment package,
// the service's own tables and queues, Key Vault references, Application Insights and Graph.
// User-assigned (not system-assigned) so that roles and Graph permissions can be granted before
// the app exists and survive a re-creation of the app.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
