// Application Insights workbook: sync health per staff member, Graph throttling, latency and the
// work queue. The content lives in workbook.json (edit it in the portal, then paste it back).

param location string
param tags object = {}
param applicationInsightsId string
param displayName string = 'Coconut sync health'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names must be GUIDs; derive it so redeployments update the same workbook.
  name: guid(applicationInsightsId, 'coconut-sync-health')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    version: 'Notebook/1.0'
    serializedData: loadTextContent('workbook.json')
  }
}

output id string = workbook.id
