"""Weakening a security property in a copy of infra/ makes the policy fail.

Each case edits one line of a copied template the way a careless change might, then runs every
rule in tests/infra/policy.py on the copy and expects a violation that names the problem.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra import policy
from tests.infra.bicep import load_all, parse, syntax_problems
from tests.infra.conftest import INFRA

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
TABLE_ROLE = (
    "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
    "'0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')"
)


@dataclass(frozen=True)
class Weakening:
    name: str
    file: str
    before: str
    after: str
    # Text the resulting violation must contain.
    reported: str


WEAKENINGS = [
    Weakening(
        "shared key access allowed",
        "core/storage/storage-account.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "allowSharedKeyAccess",
    ),
    Weakening(
        "storage TLS 1.0",
        "core/storage/storage-account.bicep",
        "minimumTlsVersion: 'TLS1_2'",
        "minimumTlsVersion: 'TLS1_0'",
        "minimumTlsVersion is 'TLS1_0'",
    ),
    Weakening(
        "storage over plain HTTP",
        "core/storage/storage-account.bicep",
        "supportsHttpsTrafficOnly: true",
        "supportsHttpsTrafficOnly: false",
        "supportsHttpsTrafficOnly",
    ),
    Weakening(
        "public blob container",
        "core/storage/storage-account.bicep",
        "publicAccess: 'None'",
        "publicAccess: 'Blob'",
        "publicAccess",
    ),
    Weakening(
        "connection string for host storage",
        "app/function-app.bicep",
        "      AzureWebJobsStorage__credential: 'managedidentity'\n",
        "      AzureWebJobsStorage__credential: 'managedidentity'\n"
        "      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=st;"
        "AccountKey=c2VjcmV0'\n",
        "AzureWebJobsStorage is set",
    ),
    Weakening(
        "storage connection string built from listKeys",
        "app/function-app.bicep",
        "      AzureWebJobsStorage__credential: 'managedidentity'\n",
        "      AzureWebJobsStorage__credential: 'managedidentity'\n"
        "      STORAGE_KEY: storage.listKeys().keys[0].value\n",
        "listKeys() hands out a key",
    ),
    Weakening(
        "extra connection string setting",
        "app/function-app.bicep",
        "      GRAPH_AUTH: 'managed_identity'\n",
        "      GRAPH_AUTH: 'managed_identity'\n"
        "      TABLES_CONNECTION_STRING: 'UseDevelopmentStorage=true'\n",
        "connection strings are not allowed",
    ),
    Weakening(
        "secret passed as a plain app setting",
        "app/function-app.bicep",
        "COCONUT_API_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}"
        "secrets/coconut-api-key/)'",
        "COCONUT_API_KEY: coconutApiKey",
        "COCONUT_API_KEY: must be a Key Vault reference",
    ),
    Weakening(
        "previous webhook secret as a literal",
        "app/function-app.bicep",
        ": ''\n",
        ": 'old-secret'\n",
        "COCONUT_WEBHOOK_SECRET_PREVIOUS: must be a Key Vault reference or empty",
    ),
    Weakening(
        "Key Vault reference to a secret that is never created",
        "app/function-app.bicep",
        "secrets/graph-client-state/)",
        "secrets/graph-clientstate/)",
        "never creates",
    ),
    Weakening(
        "the worker exporting telemetry as well",
        "app/function-app.bicep",
        "      GRAPH_AUTH: 'managed_identity'\n",
        "      GRAPH_AUTH: 'managed_identity'\n"
        "      PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'\n",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: the worker must not export telemetry",
    ),
    Weakening(
        "Graph secret auth instead of managed identity",
        "app/function-app.bicep",
        "GRAPH_AUTH: 'managed_identity'",
        "GRAPH_AUTH: 'client_secret'",
        "GRAPH_AUTH is 'client_secret'",
    ),
    Weakening(
        "HTTP allowed",
        "app/function-app.bicep",
        "httpsOnly: true",
        "httpsOnly: false",
        "httpsOnly",
    ),
    Weakening(
        "app TLS 1.0",
        "app/function-app.bicep",
        "      minTlsVersion: '1.2'",
        "      minTlsVersion: '1.0'",
        "minTlsVersion is '1.0'",
    ),
    Weakening(
        "system-assigned identity added",
        "app/function-app.bicep",
        "type: 'UserAssigned'",
        "type: 'SystemAssigned, UserAssigned'",
        "system-assigned identity",
    ),
    Weakening(
        "deployment package fetched with a key",
        "app/function-app.bicep",
        "type: 'UserAssignedIdentity'",
        "type: 'StorageAccountConnectionString'",
        "authentication.type",
    ),
    Weakening(
        "SCM basic auth enabled",
        "app/function-app.bicep",
        "    name: 'scm'\n    properties: {\n      allow: false",
        "    name: 'scm'\n    properties: {\n      allow: true",
        "properties.allow",
    ),
    Weakening(
        "role broadened to Contributor",
        "app/rbac.bicep",
        TABLE_ROLE,
        f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{CONTRIBUTOR}')",
        f"Contributor ({CONTRIBUTOR}) is broader",
    ),
    Weakening(
        "role broadened to Owner",
        "app/rbac.bicep",
        TABLE_ROLE,
        f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{OWNER}')",
        f"Owner ({OWNER}) is broader",
    ),
    Weakening(
        "role broadened to Storage Account Contributor",
        "app/rbac.bicep",
        TABLE_ROLE,
        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        f"'{STORAGE_ACCOUNT_CONTRIBUTOR}')",
        "Storage Account Contributor",
    ),
    Weakening(
        "role scoped to the whole resource group",
        "app/rbac.bicep",
        "  scope: applicationInsights\n",
        "",
        "not scoped to a single resource",
    ),
    Weakening(
        "App Service Authentication off, so caller headers pass untouched",
        "app/function-app.bicep",
        "      platform: {\n        enabled: true",
        "      platform: {\n        enabled: false",
        "properties.platform.enabled",
    ),
    Weakening(
        "a client secret for the ops API registration",
        "app/function-app.bicep",
        "            clientId: opsApiClientId\n",
        "            clientId: opsApiClientId\n"
        "            clientSecretSettingName: 'OPS_API_SECRET'\n",
        "a client secret is configured",
    ),
    Weakening(
        "tokens from any tenant",
        "app/function-app.bicep",
        "${tenant().tenantId}/v2.0",
        "common/v2.0",
        "the issuer is not this tenant's",
    ),
    Weakening(
        "the ops API's audience dropped",
        "app/function-app.bicep",
        "              'api://${opsApiClientId}'\n",
        "",
        "api://<client id> is not an allowed audience",
    ),
    Weakening(
        "the platform's authentication marker set by hand",
        "app/function-app.bicep",
        "      GRAPH_AUTH: 'managed_identity'\n",
        "      GRAPH_AUTH: 'managed_identity'\n      WEBSITE_AUTH_ENABLED: 'True'\n",
        "WEBSITE_AUTH_ENABLED: set by the platform or the local host only",
    ),
    Weakening(
        "the local principal switch in Azure",
        "app/function-app.bicep",
        "      GRAPH_AUTH: 'managed_identity'\n",
        "      GRAPH_AUTH: 'managed_identity'\n      LOCAL_PRINCIPAL_ROLES: 'Sync.Operate'\n",
        "LOCAL_PRINCIPAL_ROLES: set by the platform or the local host only",
    ),
    Weakening(
        "storage public with vnetEnabled",
        "core/storage/storage-account.bicep",
        "publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
        "publicNetworkAccess: 'Enabled'",
        "publicNetworkAccess is 'Enabled' with vnetEnabled",
    ),
    Weakening(
        "storage firewall open with vnetEnabled",
        "core/storage/storage-account.bicep",
        "defaultAction: vnetEnabled ? 'Deny' : 'Allow'",
        "defaultAction: 'Allow'",
        "networkAcls.defaultAction is 'Allow' with vnetEnabled",
    ),
    Weakening(
        "Key Vault public with vnetEnabled",
        "core/security/key-vault.bicep",
        "publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
        "publicNetworkAccess: 'Enabled'",
        "publicNetworkAccess is 'Enabled' with vnetEnabled",
    ),
    Weakening(
        "no private endpoint for the table service",
        "app/private-network.bicep",
        "groupId: 'table'",
        "groupId: 'file'",
        "private endpoints missing: ['table']",
    ),
    Weakening(
        "no private endpoint for Key Vault",
        "app/private-network.bicep",
        "groupId: 'vault'",
        "groupId: 'blob'",
        "private endpoints missing: ['vault']",
    ),
    Weakening(
        "the function app outside the virtual network",
        "app/function-app.bicep",
        "virtualNetworkSubnetId: vnetEnabled ? appSubnetId : null",
        "virtualNetworkSubnetId: null",
        "not in the virtual network with vnetEnabled",
    ),
    Weakening(
        "the app subnet not delegated to Flex Consumption",
        "app/private-network.bicep",
        "serviceName: 'Microsoft.App/environments'",
        "serviceName: 'Microsoft.Web/serverFarms'",
        "no subnet delegated to Microsoft.App/environments",
    ),
    Weakening(
        "Application Insights local auth enabled",
        "core/monitor/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
        "DisableLocalAuth",
    ),
    Weakening(
        "Key Vault access policies instead of RBAC",
        "core/security/key-vault.bicep",
        "enableRbacAuthorization: true",
        "enableRbacAuthorization: false",
        "enableRbacAuthorization",
    ),
    Weakening(
        "data key as a plain app setting",
        "app/function-app.bicep",
        "SYNC_DATA_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}"
        "secrets/sync-data-key/)'",
        "SYNC_DATA_KEY: 'bG9jYWwtb25seSBkYXRhIGtleSwgbmV2ZXIgQXp1cmU='",
        "SYNC_DATA_KEY: must be a Key Vault reference",
    ),
    Weakening(
        "data key taken from a parameter instead of generated",
        "core/security/key-vault.bicep",
        "value: dataKeyKept ? syncDataKey : newDataKey",
        "value: syncDataKey",
        "the data key is not generated at deployment",
    ),
    Weakening(
        "data key created only sometimes",
        "core/security/key-vault.bicep",
        "resource dataKey 'secrets' = {",
        "resource dataKey 'secrets' = if (!empty(syncDataKey)) {",
        "created only sometimes",
    ),
    Weakening(
        "data key exposed as an output",
        "core/security/key-vault.bicep",
        "output name string = vault.name",
        "output name string = vault.name\noutput dataKey string = syncDataKey",
        "exposes a secure parameter",
    ),
    Weakening(
        "data key seed exposed as an output",
        "core/security/key-vault.bicep",
        "output name string = vault.name",
        "output name string = vault.name\noutput seed string = dataKeySeedA",
        "exposes a secure parameter",
    ),
    Weakening(
        "secret exposed as an output",
        "core/security/key-vault.bicep",
        "output name string = vault.name",
        "output name string = vault.name\noutput apiKey string = coconutApiKey",
        "exposes a secure parameter",
    ),
]


@pytest.mark.parametrize("weakening", WEAKENINGS, ids=lambda w: w.name)
def test_policy_fails_when_a_property_is_weakened(weakening: Weakening, tmp_path: Path) -> None:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    target = copy / weakening.file
    source = target.read_text()
    # The edit must apply exactly once, or the case would test nothing.
    assert source.count(weakening.before) == 1
    target.write_text(source.replace(weakening.before, weakening.after))
    assert syntax_problems(parse(target.read_bytes())) == []

    templates = load_all(copy)
    violations = [v for rule in policy.SECURITY_RULES for v in rule(templates)]

    assert any(weakening.reported in v for v in violations), violations


def test_an_unchanged_copy_passes(tmp_path: Path) -> None:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    templates = load_all(copy)
    assert [v for rule in policy.SECURITY_RULES for v in rule(templates)] == []
