// MlFunctions on Azure: a Function App on Flex Consumption (FC1), its storage account (AzureWebJobsStorage:
// the Durable task hub, datasets/, prepared/, checkpoints/, models/ and the training-jobs queue), a
// deployment container, Log Analytics + Application Insights, and the app settings the app reads.
// main.json beside this file is the hand-written ARM equivalent (Bicep tooling is not installable on the
// project's build machines); keep the two in step.
//   az deployment group create -g RG -f infra/bicep/main.bicep -p appName=mlf123
targetScope = 'resourceGroup'

@description('Base name; the storage account name is derived from it (lowercase letters and digits).')
@minLength(3)
@maxLength(18)
param appName string

param location string = resourceGroup().location

@description('dotnet-isolated runtime version on Flex Consumption.')
param dotnetVersion string = '10.0'

@description('Flex Consumption instance memory (MB): 512, 2048 or 4096.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

param maximumInstanceCount int = 100

@description('Dispatch:Mode: Queue (worker deployment on training-jobs) or KubernetesJob (needs an AKS API server).')
@allowed(['Queue', 'KubernetesJob'])
param dispatchMode string = 'Queue'

@description('Days after its last write that a served-request record (serving-requests/, the feedback journal) is deleted.')
@minValue(1)
param requestRecordRetentionDays int = 7

@description('Days after its write that a payload log blob (payload-logs/, sampled request/response pairs) is deleted.')
@minValue(1)
param payloadLogRetentionDays int = 30

var storageName = toLower(take('${replace(appName, '-', '')}st${uniqueString(resourceGroup().id)}', 24))
var deploymentContainer = 'app-package'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

// Serving's request records and payload logs expire on their own: each lives in a container of its own, because a
// lifecycle rule matches literal prefixes only (a rule on serving/ would also delete long-unchanged policies).
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-serving-requests'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['serving-requests/'] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: requestRecordRetentionDays } } }
          }
        }
        {
          name: 'expire-payload-logs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['payload-logs/'] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: payloadLogRetentionDays } } }
          }
        }
      ]
    }
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// The app reads a connection string (ConnectionStringStorageClients, the worker, KEDA): built from the
// account's key at deployment time, never written into a file.
var storageConnection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}'

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'StorageAccountConnectionString'
            storageAccountConnectionStringName: 'DEPLOYMENT_STORAGE_CONNECTION_STRING'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'dotnet-isolated'
        version: dotnetVersion
      }
    }
    // Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION here: the runtime
    // is functionAppConfig.runtime above. host.json (hub MlFunctionsHub) ships in the package.
    siteConfig: {
      appSettings: [
        { name: 'AzureWebJobsStorage', value: storageConnection }
        { name: 'DEPLOYMENT_STORAGE_CONNECTION_STRING', value: storageConnection }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'Dispatch__Mode', value: dispatchMode }
      ]
    }
  }
  dependsOn: [packageContainer]
}

output functionAppName string = app.name
output functionAppHostName string = app.properties.defaultHostName
output storageAccountName string = storage.name
