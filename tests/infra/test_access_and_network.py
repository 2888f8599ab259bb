"""Who reaches what: the ops API behind App Service Authentication with no master key, the local
principal switch kept out of Azure, and the two network shapes (`vnetEnabled` false and true)."""

from __future__ import annotations

import ast
import json

from local.host.principal import AUTHENTICATION_SETTING, PRINCIPAL_SWITCH
from sync.ops import auth
from tests.infra import policy
from tests.infra.bicep import Expr, Template
from tests.infra.conftest import INFRA, REPOSITORY
from tests.infra.shapes import Shape

FUNCTION_APP = (REPOSITORY / "function_app.py").read_text()
PARAMETERS = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
NETWORK_TYPES = (
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Network/privateEndpoints",
    "Microsoft.Network/privateDnsZones",
)


def _routes() -> dict[str, str]:
    """Each HTTP function of function_app.py and the auth level it declares."""
    levels: dict[str, str] = {}
    for node in ast.parse(FUNCTION_APP).body:
        if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "route":
                level = next(
                    (ast.unparse(k.value) for k in decorator.keywords if k.arg == "auth_level"),
                    "app default",
                )
                route = next(
                    ast.literal_eval(k.value) for k in decorator.keywords if k.arg == "route"
                )
                levels[f"{node.name} {route}"] = level
    return levels


def test_no_route_needs_the_master_key_and_ops_routes_need_no_key_at_all() -> None:
    routes = _routes()
    assert "AuthLevel.ADMIN" not in FUNCTION_APP
    ops = {name: level for name, level in routes.items() if " ops/" in name}
    assert ops, routes
    # Entra ID instead of a key: every ops function admits its caller by app role first.
    assert set(ops.values()) == {"func.AuthLevel.ANONYMOUS"}
    for name in ops:
        function = name.split()[0]
        assert f"async def {function}(" in FUNCTION_APP
    assert FUNCTION_APP.count("return await _ops(") == len(ops)
    # Coconut keeps its function key (the app's default level) and HMAC.
    assert routes["coconut_webhook coconut/webhooks"] == "app default"
    assert "http_auth_level=func.AuthLevel.FUNCTION" in FUNCTION_APP


def test_the_function_reads_the_same_platform_marker_the_local_host_sets() -> None:
    assert auth.AUTHENTICATION_SETTING == AUTHENTICATION_SETTING == "WEBSITE_AUTH_ENABLED"


def test_the_local_principal_switch_is_never_deployed(templates: dict[str, Template]) -> None:
    # The local host, its only reader, is not in the package the platform runs.
    ignored = (REPOSITORY / ".funcignore").read_text().splitlines()
    assert "local/" in ignored
    for path in [REPOSITORY / "function_app.py", *(REPOSITORY / "sync").rglob("*.py")]:
        assert PRINCIPAL_SWITCH not in path.read_text(), path
    assert policy.switches_stay_out_of_the_app_settings(templates) == []


def test_ops_api_accepts_only_entra_tokens_for_its_registration(
    templates: dict[str, Template],
) -> None:
    assert policy.ops_api_is_behind_app_service_authentication(templates) == []
    main = templates["main.bicep"]
    assert main.params["opsApiClientId"].default == ""
    assert PARAMETERS["opsApiClientId"]["value"] == "${OPS_API_CLIENT_ID}"
    # The command line's two settings are deployment outputs under the same names.
    cli = (REPOSITORY / "sync/ops/cli.py").read_text()
    for output in ("SYNC_OPS_URL", "SYNC_OPS_AUDIENCE"):
        assert output in main.outputs
        assert f'"{output}"' in cli
    audience = main.outputs["SYNC_OPS_AUDIENCE"]
    assert isinstance(audience, Expr)
    assert "api://${opsApiClientId}" in audience.text


def test_the_default_deployment_has_no_network_and_public_endpoints(
    templates: dict[str, Template],
) -> None:
    default = Shape(templates, vnet_enabled=False)
    assert templates["main.bicep"].params["vnetEnabled"].default is False
    assert PARAMETERS["vnetEnabled"]["value"] == "${VNET_ENABLED}"
    assert "app/private-network.bicep" not in default.deployed_templates()
    for resource_type in NETWORK_TYPES:
        assert default.resources(resource_type) == [], resource_type
    for resource_type in (policy.STORAGE_ACCOUNT, policy.VAULT):
        [resource] = default.resources(resource_type)
        assert default.value(resource, "properties.publicNetworkAccess") == "Enabled"
    [site] = default.resources("Microsoft.Web/sites")
    assert default.value(site, "properties.virtualNetworkSubnetId") is None


def test_the_private_deployment_closes_storage_and_key_vault(
    templates: dict[str, Template],
) -> None:
    private = Shape(templates, vnet_enabled=True)
    assert policy.private_networking_closes_storage_and_key_vault(templates) == []
    assert "app/private-network.bicep" in private.deployed_templates()
    for resource_type in NETWORK_TYPES:
        assert private.resources(resource_type), resource_type
    groups = {m.params.get("groupId") for _, m in private.modules("private-endpoint.bicep")}
    assert groups == {"blob", "queue", "table", "vault"}
    for resource_type in (policy.STORAGE_ACCOUNT, policy.VAULT):
        [resource] = private.resources(resource_type)
        assert private.value(resource, "properties.publicNetworkAccess") == "Disabled"
    # The app itself still answers Coconut and Graph from the internet.
    [site] = private.resources("Microsoft.Web/sites")
    assert private.value(site, "properties.publicNetworkAccess") == "Enabled"


def test_no_broad_role_is_assigned_anywhere(templates: dict[str, Template]) -> None:
    granted = {
        policy._role_id(assignment)
        for template in templates.values()
        for assignment in template.of_type("Microsoft.Authorization/roleAssignments")
    }
    assert granted
    assert granted.isdisjoint(policy.BROAD_ROLES)
    assert granted == {role for role, _, _ in policy.ALLOWED_ROLE_ASSIGNMENTS}
