"""The local host's stand-in for App Service Authentication: the principal switch, and headers the
app reads exactly as it reads the platform's."""

from __future__ import annotations

from local.host.principal import (
    DEFAULT_ROLES,
    PRINCIPAL_SWITCH,
    LocalPrincipal,
    principal_from_environment,
    request_headers,
)
from sync.ops.auth import Caller, Role, caller_from_headers


def test_by_default_the_local_caller_holds_both_ops_roles() -> None:
    assert set(DEFAULT_ROLES) == {role.value for role in Role}
    for unset in ({}, {PRINCIPAL_SWITCH: ""}, {PRINCIPAL_SWITCH: "  "}):
        assert principal_from_environment(unset) == LocalPrincipal(DEFAULT_ROLES)


def test_the_switch_picks_the_roles_or_no_principal() -> None:
    reader = principal_from_environment({PRINCIPAL_SWITCH: "Sync.Read"})
    assert reader is not None
    assert reader.roles == ("Sync.Read",)
    both = principal_from_environment({PRINCIPAL_SWITCH: " Sync.Read , Sync.Operate "})
    assert both is not None
    assert both.roles == ("Sync.Read", "Sync.Operate")
    assert principal_from_environment({PRINCIPAL_SWITCH: "none"}) is None
    assert principal_from_environment({PRINCIPAL_SWITCH: "None"}) is None


def test_the_app_reads_the_local_principal_as_it_reads_the_platforms() -> None:
    principal = LocalPrincipal(("Sync.Read",))
    assert caller_from_headers(principal.headers()) == Caller(
        principal.object_id, frozenset({"Sync.Read"})
    )


def test_a_callers_own_identity_headers_never_reach_the_function() -> None:
    forged = {
        "X-MS-CLIENT-PRINCIPAL": "eyJmb3JnZWQiOiB0cnVlfQ==",
        "x-ms-client-principal-id": "someone-else",
        "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged",
        "content-type": "application/json",
    }
    assert request_headers(forged, None) == {"content-type": "application/json"}
    principal = LocalPrincipal(("Sync.Read",))
    assert request_headers(forged, principal) == {
        "content-type": "application/json",
        **principal.headers(),
    }
