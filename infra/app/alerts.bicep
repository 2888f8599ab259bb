// Log search alert rules on the Application Insights component. The queries use the component's
// table names (requests, customMetrics) and the metric names the service emits; tests/infra checks
// both. Metrics arrive pre-aggregated per export interval (value, valueSum, valueCount, valueMax).

param location string
param tags object = {}
param applicationInsightsId string
param namePrefix string

@description('Where alerts go; empty creates no action group (alerts still show in the portal).')
param alertEmailAddress string = ''

@description('Failed function invocations in 15 minutes (per function) above which to alert.')
@minValue(0)
param failureThreshold int = 5

@description('Average webhook-to-Exchange latency (ms) over 15 minutes above which to alert.')
@minValue(1000)
param webhookToExchangeTargetMs int = 60000

@description('Minutes without a run of staff_sync_timer before alerting; keep above the timer period.')
@allowed([
  15
  20
  30
  45
  60
])
param timerSilenceMinutes int = 20

@description('Hours in a row in which the scheduled repair had to make up for lost Coconut webhooks before alerting (one lost now and then is normal).')
@minValue(2)
@maxValue(6)
param lostWebhookHours int = 3

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: '${namePrefix}-ops'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'coconutsync'
    enabled: true
    emailReceivers: [
      {
        name: 'operations'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmailAddress) ? [] : [actionGroup.id]

// Any function invocation that failed (the queue worker, the timer, webhooks), per function.
resource failures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-function-failures'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: function failures'
    description: 'Function invocations failed more often than the threshold in 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
requests
| where success == false
| project timestamp, name
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: failureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Messages that failed maxDequeueCount times sit in staff-sync-poison. Storage metrics have no
// per-queue depth, so the timer reports the poison queue's length as the poison_queue_length gauge.
resource poisonQueue 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: poison queue not empty'
    description: 'staff-sync-poison holds messages that failed every retry; see docs/deployment.md, Operations.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'poison_queue_length'
| project timestamp, poison_messages = value
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'poison_messages'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// The periodic sync repairs drift and retries due work; if it stops, nothing else notices.
resource timerStopped 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-timer-stopped'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: periodic sync stopped'
    description: 'staff_sync_timer has not run within the window.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT${timerSilenceMinutes}M'
    criteria: {
      allOf: [
        {
          query: '''
requests
| where name == 'staff_sync_timer' or operation_Name == 'staff_sync_timer'
| project timestamp, name
'''
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// staff_by_status{status=Error}: staff members whose calendars are not being synced.
resource staffInError 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-staff-in-error'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: staff in Error'
    description: 'At least one staff member is in status Error; the ops API shows the reason.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'staff_by_status'
| where tostring(customDimensions.status) == 'Error'
| project timestamp, staff_in_error = value
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'staff_in_error'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Webhook received -> Exchange event written, averaged over the window.
resource webhookLatency 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-webhook-latency'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: webhook-to-Exchange latency above target'
    description: 'Coconut changes take longer than the target to reach Exchange calendars.'
    severity: 3
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'webhook_to_exchange_ms'
| where valueCount > 0
| project timestamp, latency_ms = valueSum / valueCount
'''
          timeAggregation: 'Average'
          metricMeasureColumn: 'latency_ms'
          operator: 'GreaterThan'
          threshold: webhookToExchangeTargetMs
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// lost_webhooks_repaired{kind}: what the scheduled repair (COCONUT_RECONCILE_SCHEDULE) found
// Coconut and the service disagree on. Repairs hour after hour mean webhooks are not arriving
// (a wrong or rotated secret, a blocked endpoint, Coconut's deliveries turned off).
resource lostWebhooks 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-lost-webhooks'
  location: location
  tags: tags
  properties: {
    displayName: 'Coconut sync: webhooks keep getting lost'
    description: 'The scheduled repair made up for lost Coconut webhooks every hour of the window; see docs/operations.md, "When webhooks keep getting lost".'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'lost_webhooks_repaired'
| project timestamp, repaired = valueSum
'''
          timeAggregation: 'Total'
          metricMeasureColumn: 'repaired'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: lostWebhookHours
            minFailingPeriodsToAlert: lostWebhookHours
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

output actionGroupId string = empty(alertEmailAddress) ? '' : actionGroup.id
