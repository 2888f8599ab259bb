"""Who may call which ops route: the platform's principal header, the two app roles, and what
happens when the platform does not vouch for the header."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sync.ops.auth import (
    READ_ROUTES,
    AuthenticationOff,
    Caller,
    MissingRole,
    NotSignedIn,
    Role,
    admit,
    caller_from_headers,
    platform_authenticates,
    required_role,
)

OBJECT_ID = "6dc83493-4238-4e6c-b87b-3f9d7c6f7cd2"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
ON = {"WEBSITE_AUTH_ENABLED": "True"}


def principal(*claims: tuple[str, str], role_typ: str = "roles") -> dict[str, str]:
    """The headers App Service Authentication adds for a caller with these claims."""
    document: dict[str, Any] = {
        "auth_typ": "aad",
        "claims": [{"typ": typ, "val": val} for typ, val in claims],
        "name_typ": "name",
        "role_typ": role_typ,
    }
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


def signed_in(*roles: str) -> dict[str, str]:
    return principal(
        (OID_CLAIM, OBJECT_ID),
        ("name", "Jane Doe"),
        ("preferred_username", "jane.doe@bank.example"),
        *(("roles", role) for role in roles),
    )


def test_the_caller_is_their_object_id_and_roles_nothing_else() -> None:
    caller = caller_from_headers(signed_in("Sync.Read"))
    assert caller == Caller(OBJECT_ID, frozenset({"Sync.Read"}))


def test_roles_are_read_under_the_principals_role_type_and_the_token_names() -> None:
    mapped = principal((OID_CLAIM, OBJECT_ID), (ROLE_URI, "Sync.Operate"), role_typ=ROLE_URI)
    raw = principal(("oid", OBJECT_ID.upper()), ("roles", "Sync.Read"), role_typ="")
    assert caller_from_headers(mapped) == Caller(OBJECT_ID, frozenset({"Sync.Operate"}))
    assert caller_from_headers(raw) == Caller(OBJECT_ID, frozenset({"Sync.Read"}))


def test_header_names_are_case_insensitive_and_padding_is_optional() -> None:
    value = signed_in("Sync.Read")["X-MS-CLIENT-PRINCIPAL"].rstrip("=")
    assert caller_from_headers({"x-ms-client-principal": value}) is not None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-MS-CLIENT-PRINCIPAL": ""},
        {"X-MS-CLIENT-PRINCIPAL": "not base64!"},
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"not json").decode()},
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1, 2]").decode()},
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"claims": "x"}').decode()},
        # Without an object id the audit could not name the caller.
        principal(("name", "Jane Doe"), ("roles", "Sync.Operate")),
        principal((OID_CLAIM, "jane.doe@bank.example"), ("roles", "Sync.Operate")),
        # The ids headers alone are not the principal.
        {"X-MS-CLIENT-PRINCIPAL-ID": OBJECT_ID, "X-MS-CLIENT-PRINCIPAL-NAME": "jane"},
    ],
)
def test_no_readable_principal_is_no_caller(headers: dict[str, str]) -> None:
    assert caller_from_headers(headers) is None


def test_reads_need_sync_read_and_everything_else_sync_operate() -> None:
    assert {required_role(route) for route in READ_ROUTES} == {Role.READ}
    for route in ("ops_staff_command", "ops_resync", "ops_poison_replay"):
        assert required_role(route) is Role.OPERATE
    # A command added later is guarded without anyone listing it.
    assert required_role("ops_rotate_data_key") is Role.OPERATE


def test_sync_operate_includes_reading_but_sync_read_no_command() -> None:
    operator = Caller(OBJECT_ID, frozenset({Role.OPERATE}))
    reader = Caller(OBJECT_ID, frozenset({Role.READ}))
    assert operator.may(Role.READ)
    assert operator.may(Role.OPERATE)
    assert reader.may(Role.READ)
    assert not reader.may(Role.OPERATE)
    assert not Caller(OBJECT_ID, frozenset({"Other.Role"})).may(Role.READ)


def test_admit_gives_401_403_or_the_caller() -> None:
    with pytest.raises(NotSignedIn) as anonymous:
        admit({}, "ops_staff_list", ON)
    assert anonymous.value.status == 401
    with pytest.raises(MissingRole) as reader:
        admit(signed_in("Sync.Read"), "ops_staff_command", ON)
    assert reader.value.status == 403
    assert reader.value.caller.object_id == OBJECT_ID
    assert "Sync.Operate" in reader.value.message
    assert admit(signed_in("Sync.Read"), "ops_staff_list", ON).object_id == OBJECT_ID
    assert admit(signed_in("Sync.Operate"), "ops_resync", ON).object_id == OBJECT_ID


@pytest.mark.parametrize("environment", [{}, {"WEBSITE_AUTH_ENABLED": "False"}])
def test_without_the_platforms_authentication_nobody_is_admitted(
    environment: dict[str, str],
) -> None:
    # The header could then come from the caller: even a full-role one is not believed.
    assert not platform_authenticates(environment)
    with pytest.raises(AuthenticationOff) as off:
        admit(signed_in("Sync.Read", "Sync.Operate"), "ops_staff_list", environment)
    assert off.value.status == 503


def test_refusal_messages_name_no_person() -> None:
    messages = [NotSignedIn().message, AuthenticationOff().message]
    messages.append(MissingRole(Caller(OBJECT_ID, frozenset()), Role.OPERATE).message)
    for message in messages:
        assert "@" not in message
        assert OBJECT_ID not in message
