"""The security properties infra/ must keep, as rules over the parsed Bicep templates.

Each rule takes every template under infra/ (see `bicep.load_all`) and returns the violations it
finds as readable sentences; an empty list means the property holds. The tests run every rule on
the real templates and on deliberately weakened copies, so a later change cannot weaken one of
these properties without a failing test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from local.host.principal import PRINCIPAL_SWITCH as LOCAL_PRINCIPAL_SWITCH
from sync.telemetry import PLATFORM_TELEMETRY_SETTINGS
from tests.infra.bicep import MISSING, Expr, Missing, Resource, Template, Value, calls, lookup
from tests.infra.shapes import Shape

Templates = dict[str, Template]
Rule = Callable[[Templates], list[str]]

MAIN: Final = "main.bicep"
FUNCTION_APP: Final = "app/function-app.bicep"
STORAGE: Final = "core/storage/storage-account.bicep"
KEY_VAULT: Final = "core/security/key-vault.bicep"

KEY_VAULT_REFERENCE: Final = "@Microsoft.KeyVault(SecretUri="

# Role definition ids (built-in roles) and what they may be granted on.
STORAGE_BLOB_DATA_OWNER: Final = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR: Final = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR: Final = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER: Final = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER: Final = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER: Final = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"

# Built-in roles broader than anything the app or the deployer needs: none may be assigned, on
# any scope (docs/deployment.md lists the roles that are, with why).
BROAD_ROLES: Final = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "f25e0fa2-a7c8-4377-a976-54943a77a395": "Key Vault Contributor",
    "de139f84-1756-47ae-9be6-808fbbe84772": "Website Contributor",
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
    "749f88d5-cbae-40b8-bcfc-e573ddc772fa": "Monitoring Contributor",
}

STORAGE_ACCOUNT: Final = "Microsoft.Storage/storageAccounts"
COMPONENT: Final = "Microsoft.Insights/components"
VAULT: Final = "Microsoft.KeyVault/vaults"

# (role, type of the resource it is scoped to, principal parameter) — the complete allowed set.
ALLOWED_ROLE_ASSIGNMENTS: Final = frozenset(
    {
        (STORAGE_BLOB_DATA_OWNER, STORAGE_ACCOUNT, "identityPrincipalId"),
        (STORAGE_QUEUE_DATA_CONTRIBUTOR, STORAGE_ACCOUNT, "identityPrincipalId"),
        (STORAGE_TABLE_DATA_CONTRIBUTOR, STORAGE_ACCOUNT, "identityPrincipalId"),
        (MONITORING_METRICS_PUBLISHER, COMPONENT, "identityPrincipalId"),
        (KEY_VAULT_SECRETS_USER, VAULT, "identityPrincipalId"),
        (KEY_VAULT_SECRETS_OFFICER, VAULT, "deployerPrincipalId"),
    }
)
# What the app's identity must hold for the service to run at all.
REQUIRED_APP_ROLES: Final = frozenset(
    (role, scope) for role, scope, who in ALLOWED_ROLE_ASSIGNMENTS if who == "identityPrincipalId"
)

# The app settings the service reads (contracts/local-run.md plus the Azure-only ones).
APP_SETTINGS: Final = frozenset(
    {
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__tableServiceUri",
        "AZURE_CLIENT_ID",
        "GRAPH_BASE_URL",
        "GRAPH_AUTH",
        "COCONUT_API_BASE_URL",
        "COCONUT_API_KEY",
        "COCONUT_WEBHOOK_SECRET",
        "COCONUT_WEBHOOK_SECRET_PREVIOUS",
        "SYNC_TIMER_SCHEDULE",
        "PUBLIC_BASE_URL",
        "GRAPH_CLIENT_STATE",
        "SYNC_HORIZON_DAYS",
        "SYNC_DATA_KEY",
        "SYNC_DATA_KEY_PREVIOUS",
        "SYNC_CONTENT_RETENTION_DAYS",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    }
)
SECRET_SETTINGS: Final = frozenset(
    {"COCONUT_API_KEY", "COCONUT_WEBHOOK_SECRET", "GRAPH_CLIENT_STATE", "SYNC_DATA_KEY"}
)
# Optional secret: a Key Vault reference or empty, never a value.
OPTIONAL_SECRET_SETTINGS: Final = frozenset(
    {"COCONUT_WEBHOOK_SECRET_PREVIOUS", "SYNC_DATA_KEY_PREVIOUS"}
)
# The secret holding the key that encrypts customer content at rest.
DATA_KEY_SECRET: Final = "sync-data-key"
# Not a credential once Application Insights local auth is off; the one connection string allowed.
ALLOWED_CONNECTION_STRING_SETTINGS: Final = frozenset({"APPLICATIONINSIGHTS_CONNECTION_STRING"})

# Text that only appears in key- or SAS-based credentials.
_CREDENTIAL_MARKERS: Final = (
    "AccountKey=",
    "SharedAccessSignature=",
    "SharedAccessKey=",
    "DefaultEndpointsProtocol=",
    "UseDevelopmentStorage",
    "sig=",
)
# ARM functions that return keys, SAS tokens or connection strings.
_KEY_FUNCTIONS: Final = frozenset(
    {"listKeys", "listKeyValue", "listAccountSas", "listServiceSas", "listConnectionStrings"}
)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def storage_accounts_accept_only_entra_over_tls12(templates: Templates) -> list[str]:
    expected: dict[str, Value] = {
        "properties.allowSharedKeyAccess": False,
        "properties.defaultToOAuthAuthentication": True,
        "properties.minimumTlsVersion": "TLS1_2",
        "properties.supportsHttpsTrafficOnly": True,
        "properties.allowBlobPublicAccess": False,
    }
    violations = _expect_all(_resources(templates, STORAGE_ACCOUNT), expected)
    for container in _resources(templates, f"{STORAGE_ACCOUNT}/blobServices/containers"):
        violations += _expect(container, "properties.publicAccess", "None")
    return violations


def function_app_is_https_only_with_user_assigned_identity(templates: Templates) -> list[str]:
    sites = _resources(templates, "Microsoft.Web/sites")
    violations = [] if sites else ["no Microsoft.Web/sites resource found"]
    violations += _expect_all(
        sites,
        {
            "kind": "functionapp,linux",
            "properties.httpsOnly": True,
            "properties.siteConfig.minTlsVersion": "1.2",
            "properties.siteConfig.scmMinTlsVersion": "1.2",
            "properties.siteConfig.ftpsState": "Disabled",
            "identity.type": "UserAssigned",
            "properties.functionAppConfig.deployment.storage.authentication.type": (
                "UserAssignedIdentity"
            ),
            "properties.functionAppConfig.runtime.name": "python",
            "properties.functionAppConfig.runtime.version": "3.11",
        },
    )
    for site in sites:
        if site.get("properties.keyVaultReferenceIdentity") is MISSING:
            violations.append(f"{site.where()}: keyVaultReferenceIdentity is not set")
        memory = _resolve_value(
            _owner(templates, site),
            site.get("properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB"),
        )
        if memory != 2048:
            violations.append(f"{site.where()}: instanceMemoryMB is {memory!r}, expected 2048")
    violations += _expect_all(
        _resources(templates, "Microsoft.Web/serverfarms"),
        {"sku.name": "FC1", "sku.tier": "FlexConsumption"},
    )
    policies = _resources(templates, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    names = {p.get("name") for p in policies}
    if names != {"ftp", "scm"}:
        violations.append(
            f"basic publishing credentials policies cover {names}, expected ftp and scm"
        )
    violations += _expect_all(policies, {"properties.allow": False})
    return violations


def app_settings_hold_no_secrets_or_keys(templates: Templates) -> list[str]:
    settings = app_settings(templates)
    if settings is None:
        return ["no Microsoft.Web/sites/config 'appsettings' resource found"]
    violations: list[str] = []
    names = set(settings)
    if missing := APP_SETTINGS - names:
        violations.append(f"app settings missing: {sorted(missing)}")
    if extra := names - APP_SETTINGS:
        violations.append(f"unexpected app settings: {sorted(extra)}")
    secure_params = _secure_params(templates[FUNCTION_APP])
    for name, value in settings.items():
        if name == "AzureWebJobsStorage":
            violations.append("AzureWebJobsStorage is set: host storage must be identity-based")
        if "connectionstring" in name.lower().replace("_", "") and (
            name not in ALLOWED_CONNECTION_STRING_SETTINGS
        ):
            violations.append(f"{name}: connection strings are not allowed")
        for text in _literal_texts(value):
            if marker := next((m for m in _CREDENTIAL_MARKERS if m in text), None):
                violations.append(f"{name}: value contains a credential ({marker!r})")
        if isinstance(value, Expr) and (leaked := value.identifiers & secure_params):
            violations.append(f"{name}: takes the secure parameter(s) {sorted(leaked)} as a value")
        if name in SECRET_SETTINGS and not _is_key_vault_reference(value):
            violations.append(f"{name}: must be a Key Vault reference")
        if name in OPTIONAL_SECRET_SETTINGS and not _is_optional_reference(value):
            violations.append(f"{name}: must be a Key Vault reference or empty")
    violations += _expect_setting(settings, "AzureWebJobsStorage__credential", "managedidentity")
    violations += _expect_setting(settings, "GRAPH_AUTH", "managed_identity")
    # The service exports its own telemetry; the worker doing so too sends every record twice.
    for name in sorted(set(PLATFORM_TELEMETRY_SETTINGS) & names):
        violations.append(f"{name}: the worker must not export telemetry next to the service")
    auth = settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
    if not any("Authorization=AAD" in t for t in _literal_texts(auth)):
        violations.append("APPLICATIONINSIGHTS_AUTHENTICATION_STRING must use Authorization=AAD")
    public = settings.get("PUBLIC_BASE_URL")
    if not (isinstance(public, Expr) and public.literal_parts[:1] == ("https://",)):
        violations.append("PUBLIC_BASE_URL must be an https:// address of the app")
    graph = _resolve_value(templates[FUNCTION_APP], settings.get("GRAPH_BASE_URL"))
    if graph != "https://graph.microsoft.com/v1.0":
        violations.append(f"GRAPH_BASE_URL defaults to {graph!r}")
    return violations


def key_vault_references_point_at_created_secrets(templates: Templates) -> list[str]:
    settings = app_settings(templates) or {}
    created = {s.get("name") for s in _resources(templates, "Microsoft.KeyVault/vaults/secrets")}
    violations = []
    for name, value in settings.items():
        for reference in key_vault_references(value):
            secret = reference.split("secrets/", 1)[-1].split("/", 1)[0]
            if secret not in created:
                violations.append(f"{name} refers to secret {secret!r}, which infra/ never creates")
    return violations


def data_key_is_generated_in_the_vault(templates: Templates) -> list[str]:
    """The data key is a vault secret made by the deployment itself (from fresh randomness, or
    kept as the vault holds it), always created, and reaches the app only by reference to it."""
    secrets = [
        s
        for s in _resources(templates, "Microsoft.KeyVault/vaults/secrets")
        if s.get("name") == DATA_KEY_SECRET
    ]
    if len(secrets) != 1:
        return [f"infra/ creates {len(secrets)} '{DATA_KEY_SECRET}' secrets, expected one"]
    secret = secrets[0]
    violations: list[str] = []
    if secret.condition is not None:
        violations.append(f"{secret.where()}: the data key secret is created only sometimes")
    owner = _owner(templates, secret)
    generated = {
        name
        for name, param in owner.params.items()
        if param.secure and isinstance(param.default, Expr) and param.default.text == "newGuid()"
    }
    value = secret.get("properties.value")
    used = _identifiers_through_variables(owner, value)
    if not used & generated:
        violations.append(f"{secret.where()}: the data key is not generated at deployment")
    settings = app_settings(templates) or {}
    references = key_vault_references(settings.get("SYNC_DATA_KEY"))
    if not any(f"secrets/{DATA_KEY_SECRET}/" in r for r in references):
        violations.append(f"SYNC_DATA_KEY does not refer to the '{DATA_KEY_SECRET}' secret")
    return violations


def no_keys_are_ever_read(templates: Templates) -> list[str]:
    return [
        f"{path}:{line}: {name}() hands out a key or SAS"
        for path, template in templates.items()
        for name, line in calls(template.tree)
        if name in _KEY_FUNCTIONS
    ]


def monitoring_accepts_only_entra_telemetry(templates: Templates) -> list[str]:
    components = _resources(templates, COMPONENT)
    violations = [] if components else ["no Application Insights component found"]
    violations += _expect_all(components, {"properties.DisableLocalAuth": True})
    for component in components:
        if component.get("properties.WorkspaceResourceId") is MISSING:
            violations.append(f"{component.where()}: not workspace-based")
    violations += _expect_all(
        _resources(templates, "Microsoft.OperationalInsights/workspaces"),
        {"properties.features.disableLocalAuth": True},
    )
    return violations


def key_vault_uses_rbac_and_keeps_deleted_secrets(templates: Templates) -> list[str]:
    vaults = _resources(templates, VAULT)
    violations = [] if vaults else ["no Key Vault found"]
    violations += _expect_all(
        vaults,
        {
            "properties.enableRbacAuthorization": True,
            "properties.enableSoftDelete": True,
            "properties.enablePurgeProtection": True,
        },
    )
    for vault in vaults:
        if vault.get("properties.accessPolicies") is not MISSING:
            violations.append(f"{vault.where()}: access policies bypass RBAC")
    return violations


def role_assignments_are_least_privilege(templates: Templates) -> list[str]:
    violations: list[str] = []
    granted_to_app: set[tuple[str, str]] = set()
    for template in templates.values():
        for assignment in template.of_type("Microsoft.Authorization/roleAssignments"):
            where = assignment.where()
            role = _role_id(assignment)
            if role in BROAD_ROLES:
                violations.append(
                    f"{where}: {BROAD_ROLES[role]} ({role}) is broader than the narrowest "
                    "built-in role that works"
                )
                continue
            scope = assignment.get("scope")
            target = (
                template.resource(scope.text)
                if isinstance(scope, Expr) and scope.kind == "identifier"
                else None
            )
            if target is None:
                violations.append(f"{where}: not scoped to a single resource of this template")
                continue
            principal = assignment.get("properties.principalId")
            who = principal.text if isinstance(principal, Expr) else repr(principal)
            if (role, target.type, who) not in ALLOWED_ROLE_ASSIGNMENTS:
                violations.append(f"{where}: role {role} on {target.type} for {who} is not allowed")
                continue
            if who == "identityPrincipalId":
                granted_to_app.add((role, target.type))
                violations += _expect(assignment, "properties.principalType", "ServicePrincipal")
    if missing := REQUIRED_APP_ROLES - granted_to_app:
        violations.append(f"the app identity lacks roles it needs: {sorted(missing)}")
    return violations


def managed_identity_everywhere(templates: Templates) -> list[str]:
    """No system-assigned identities and no secrets or keys that leave the deployment."""
    violations: list[str] = []
    for path, template in templates.items():
        for resource in template.resources:
            kind = resource.get("identity.type")
            if isinstance(kind, str) and "SystemAssigned" in kind:
                violations.append(f"{resource.where()}: system-assigned identity")
        secure = _secure_params(template)
        for name, value in template.outputs.items():
            if isinstance(value, Expr) and value.identifiers & secure:
                violations.append(f"{path}: output {name} exposes a secure parameter")
    return violations


def storage_names_match_the_service(
    templates: Templates, queues: Iterable[str], tables: Iterable[str]
) -> list[str]:
    """infra/ creates exactly the queues and tables sync/names.py names."""
    violations: list[str] = []
    for child, wanted in (("queueServices/queues", queues), ("tableServices/tables", tables)):
        created = _created_names(templates, f"{STORAGE_ACCOUNT}/{child}")
        if created != sorted(wanted):
            violations.append(
                f"{child}: infra creates {created}, the service uses {sorted(wanted)}"
            )
    return violations


def ops_api_is_behind_app_service_authentication(templates: Templates) -> list[str]:
    """App Service Authentication validates Entra ID tokens for the ops API's app registration
    and owns the principal headers; it holds no secret and stores no token."""
    configs = [
        c
        for c in _resources(templates, "Microsoft.Web/sites/config")
        if c.get("name") == "authsettingsV2"
    ]
    if len(configs) != 1:
        return [f"expected one authsettingsV2 configuration, found {len(configs)}"]
    auth = configs[0]
    violations = _expect_all(
        configs,
        {
            # On, always: it removes caller-sent X-MS-CLIENT-PRINCIPAL* headers and tells the
            # function so (WEBSITE_AUTH_ENABLED); the function admits nobody otherwise.
            "properties.platform.enabled": True,
            "properties.httpSettings.requireHttps": True,
            "properties.login.tokenStore.enabled": False,
            # Coconut's webhooks and Graph's notifications carry no token; the ops routes
            # answer 401 themselves (sync/ops/auth.py).
            "properties.globalValidation.unauthenticatedClientAction": "AllowAnonymous",
        },
    )
    providers = auth.get("properties.identityProviders")
    if not isinstance(providers, dict) or set(providers) != {"azureActiveDirectory"}:
        shown = sorted(providers) if isinstance(providers, dict) else providers
        violations.append(f"{auth.where()}: identity providers are {shown}, expected Entra ID only")
    entra = "properties.identityProviders.azureActiveDirectory"
    client_id = auth.get(f"{entra}.registration.clientId")
    if not (isinstance(client_id, Expr) and client_id.text == "opsApiClientId"):
        violations.append(f"{auth.where()}: the client id is not the opsApiClientId parameter")
    if auth.get(f"{entra}.registration.clientSecretSettingName") is not MISSING:
        violations.append(f"{auth.where()}: a client secret is configured; none is needed")
    issuer = auth.get(f"{entra}.registration.openIdIssuer")
    if not (isinstance(issuer, Expr) and "tenant" in issuer.identifiers):
        violations.append(f"{auth.where()}: the issuer is not this tenant's")
    audiences = auth.get(f"{entra}.validation.allowedAudiences")
    texts = (
        [a.text for a in audiences if isinstance(a, Expr)] if isinstance(audiences, list) else []
    )
    if "'api://${opsApiClientId}'" not in texts:
        violations.append(f"{auth.where()}: api://<client id> is not an allowed audience")
    passed = _module_param(templates, "app/function-app.bicep", "opsApiClientId")
    if not (isinstance(passed, Expr) and passed.text == "opsApiClientId"):
        violations.append("main.bicep does not pass opsApiClientId to the function app")
    return violations


def switches_stay_out_of_the_app_settings(templates: Templates) -> list[str]:
    """Neither what the platform sets to say it authenticates callers nor the local host's
    principal switch is ever an app setting: either would let a forged principal in."""
    settings = app_settings(templates) or {}
    violations = [
        f"{name}: set by the platform or the local host only, never by the templates"
        for name in settings
        if name.upper().startswith("WEBSITE_AUTH_") or name.upper() == LOCAL_PRINCIPAL_SWITCH
    ]
    for path, template in templates.items():
        if LOCAL_PRINCIPAL_SWITCH in template.path.read_text():
            violations.append(f"{path}: mentions the local-only {LOCAL_PRINCIPAL_SWITCH}")
    return violations


def private_networking_closes_storage_and_key_vault(templates: Templates) -> list[str]:
    """With vnetEnabled: the app in a virtual network, private endpoints (with their DNS zones)
    for blob, queue, table and Key Vault, and public network access off on both."""
    private = Shape(templates, vnet_enabled=True)
    violations: list[str] = []
    switch = templates[MAIN].params.get("vnetEnabled")
    if switch is None or switch.default is not False:
        violations.append("main.bicep needs a vnetEnabled parameter that defaults to false")
    closed: dict[str, Value] = {
        "properties.publicNetworkAccess": "Disabled",
        "properties.networkAcls.defaultAction": "Deny",
    }
    for resource_type in (STORAGE_ACCOUNT, VAULT):
        found = private.resources(resource_type)
        if not found:
            violations.append(f"no {resource_type} in the private shape")
        for resource in found:
            for dotted, wanted in closed.items():
                if (actual := private.value(resource, dotted)) != wanted:
                    violations.append(
                        f"{resource.where()}: {dotted} is {actual!r} with vnetEnabled"
                    )
    violations += _private_endpoints(private)
    for site in private.resources("Microsoft.Web/sites"):
        if not isinstance(private.value(site, "properties.virtualNetworkSubnetId"), Expr):
            violations.append(f"{site.where()}: not in the virtual network with vnetEnabled")
    subnet = _module_param(templates, "app/function-app.bicep", "appSubnetId")
    if not (isinstance(subnet, Expr) and "privateNetwork" in subnet.identifiers):
        violations.append("main.bicep does not give the function app the private network's subnet")
    delegated = [
        d
        for vnet in private.resources("Microsoft.Network/virtualNetworks")
        for d in _subnet_delegations(vnet)
    ]
    if "Microsoft.App/environments" not in delegated:
        violations.append("no subnet delegated to Microsoft.App/environments (Flex Consumption)")
    return violations


# Which private endpoint each service needs: (group id, resource type, DNS zone prefix).
PRIVATE_ENDPOINTS: Final = frozenset(
    {
        ("blob", STORAGE_ACCOUNT, "privatelink.blob."),
        ("queue", STORAGE_ACCOUNT, "privatelink.queue."),
        ("table", STORAGE_ACCOUNT, "privatelink.table."),
        ("vault", VAULT, "privatelink.vaultcore.azure.net"),
    }
)


def _private_endpoints(private: Shape) -> list[str]:
    violations: list[str] = []
    found: set[tuple[str, str, str]] = set()
    for path, call in private.modules("core/network/private-endpoint.bicep"):
        group = call.params.get("groupId")
        service = call.params.get("privateLinkServiceId")
        zone = call.params.get("privateDnsZoneName")
        target = (
            private.templates[path].resource(next(iter(service.identifiers)))
            if isinstance(service, Expr) and len(service.identifiers) == 1
            else None
        )
        zone_text = zone if isinstance(zone, str) else "".join(_literal_texts(zone))
        for wanted_group, wanted_type, wanted_zone in PRIVATE_ENDPOINTS:
            if (
                group == wanted_group
                and target is not None
                and target.type == wanted_type
                and zone_text.startswith(wanted_zone)
            ):
                found.add((wanted_group, wanted_type, wanted_zone))
    if missing := PRIVATE_ENDPOINTS - found:
        violations.append(f"private endpoints missing: {sorted(g for g, _, _ in missing)}")
    endpoints = private.resources("Microsoft.Network/privateEndpoints")
    groups = private.resources("Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    links = private.resources("Microsoft.Network/privateDnsZones/virtualNetworkLinks")
    if found and not (endpoints and groups and links):
        violations.append("private endpoints without their DNS zone group and virtual network link")
    return violations


def _subnet_delegations(vnet: Resource) -> list[str]:
    subnets = vnet.get("properties.subnets")
    names: list[str] = []
    for subnet in subnets if isinstance(subnets, list) else []:
        delegations = lookup_value(subnet, "properties.delegations")
        for delegation in delegations if isinstance(delegations, list) else []:
            service = lookup_value(delegation, "properties.serviceName")
            names += [service] if isinstance(service, str) else []
    return names


def lookup_value(value: Value, dotted: str) -> Value:
    found = lookup(value, dotted)
    return None if isinstance(found, Missing) else found


def _module_param(templates: Templates, source: str, name: str) -> Value | None:
    module = templates[MAIN].module(source)
    return module.params.get(name) if module else None


SECURITY_RULES: Final[tuple[Rule, ...]] = (
    storage_accounts_accept_only_entra_over_tls12,
    function_app_is_https_only_with_user_assigned_identity,
    app_settings_hold_no_secrets_or_keys,
    key_vault_references_point_at_created_secrets,
    data_key_is_generated_in_the_vault,
    no_keys_are_ever_read,
    monitoring_accepts_only_entra_telemetry,
    key_vault_uses_rbac_and_keeps_deleted_secrets,
    role_assignments_are_least_privilege,
    managed_identity_everywhere,
    ops_api_is_behind_app_service_authentication,
    switches_stay_out_of_the_app_settings,
    private_networking_closes_storage_and_key_vault,
)


def app_settings(templates: Templates) -> dict[str, Value] | None:
    configs = [
        c
        for c in _resources(templates, "Microsoft.Web/sites/config")
        if c.get("name") == "appsettings"
    ]
    if len(configs) != 1:
        return None
    properties = configs[0].get("properties")
    return properties if isinstance(properties, dict) else None


def _resources(templates: Templates, resource_type: str) -> list[Resource]:
    return [r for t in templates.values() for r in t.of_type(resource_type)]


def _expect(resource: Resource, dotted: str, wanted: Value) -> list[str]:
    actual = resource.get(dotted)
    if actual == wanted:
        return []
    shown = actual.text if isinstance(actual, Expr) else actual
    return [f"{resource.where()}: {dotted} is {shown!r}, expected {wanted!r}"]


def _expect_all(resources: list[Resource], expected: dict[str, Value]) -> list[str]:
    return [
        v for r in resources for key, wanted in expected.items() for v in _expect(r, key, wanted)
    ]


def _expect_setting(settings: dict[str, Value], name: str, wanted: str) -> list[str]:
    actual = settings.get(name)
    return [] if actual == wanted else [f"{name} is {actual!r}, expected {wanted!r}"]


def _literal_texts(value: Value | None) -> list[str]:
    """Every piece of literal text in a value, including inside interpolations and ternaries."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Expr):
        texts = list(value.literal_parts)
        for branch in value.branches:
            texts += _literal_texts(branch)
        return texts
    return []


def key_vault_references(value: Value | None) -> list[str]:
    if isinstance(value, Expr) and value.kind == "string" and _is_key_vault_reference(value):
        return ["".join(value.literal_parts)]
    if isinstance(value, Expr):
        return [r for b in value.branches for r in key_vault_references(b)]
    return []


def _is_key_vault_reference(value: Value | None) -> bool:
    return (
        isinstance(value, Expr)
        and value.kind == "string"
        and value.literal_parts[:1] == (KEY_VAULT_REFERENCE,)
        and value.literal_parts[-1].endswith(")")
    )


def _is_optional_reference(value: Value | None) -> bool:
    if isinstance(value, Expr) and value.kind == "ternary_expression":
        return all(b == "" or _is_key_vault_reference(b) for b in value.branches) and any(
            _is_key_vault_reference(b) for b in value.branches
        )
    return value == "" or _is_key_vault_reference(value)


def _identifiers_through_variables(template: Template, value: Value | Missing) -> set[str]:
    """The identifiers a value refers to, following the template's variables."""
    seen: set[str] = set()
    todo = [value]
    while todo:
        current = todo.pop()
        if not isinstance(current, Expr):
            continue
        for name in current.identifiers - seen:
            seen.add(name)
            if name in template.variables:
                todo.append(template.variables[name])
    return seen


def _secure_params(template: Template) -> frozenset[str]:
    return frozenset(name for name, param in template.params.items() if param.secure)


def _resolve_value(template: Template, value: Value | Missing | None) -> Value | Missing | None:
    """A parameter reference resolved to the parameter's default, when it has one."""
    if isinstance(value, Expr) and value.kind == "identifier" and value.text in template.params:
        return template.params[value.text].default
    return value


def _owner(templates: Templates, resource: Resource) -> Template:
    return next(t for t in templates.values() if any(r is resource for r in t.resources))


def _role_id(assignment: Resource) -> str:
    definition = assignment.get("properties.roleDefinitionId")
    text = definition.text if isinstance(definition, Expr) else str(definition)
    found = _GUID.findall(text)
    return found[-1].lower() if found else text


def _created_names(templates: Templates, resource_type: str) -> list[str]:
    """Names of the looped child resources, followed from the module parameter to main.bicep."""
    names: list[str] = []
    for path, template in templates.items():
        for resource in template.of_type(resource_type):
            if resource.loop_source is None:
                name = resource.get("name")
                names += [name] if isinstance(name, str) else []
                continue
            names += _names_passed_to(templates, path, resource.loop_source.text)
    return sorted(names)


def _names_passed_to(templates: Templates, module_path: str, param: str) -> list[str]:
    main = templates[MAIN]
    module = main.module(module_path)
    passed = module.params.get(param) if module else None
    if isinstance(passed, Expr) and passed.kind == "identifier":
        passed = main.variables.get(passed.text)
    return [n for n in passed if isinstance(n, str)] if isinstance(passed, list) else []
