"""Who may call the ops API: people (or automation) holding an app role of the ops API's
Microsoft Entra app registration (infra/scripts/register-ops-api.sh creates it).

- `Sync.Read`: the status list, one staff member's detail, the poison queue.
- `Sync.Operate`: every command, and every read. A route is `Sync.Operate` unless it is named in
  `READ_ROUTES`, so a command added later is guarded without a change here.

Where the caller comes from: App Service Authentication (`authsettingsV2` in
infra/app/function-app.bicep) validates the caller's bearer token and hands the function its
claims in the `X-MS-CLIENT-PRINCIPAL` header. It removes every `X-MS-CLIENT-PRINCIPAL*` header a
caller sends, so that header is the platform's word, but only while App Service Authentication is
on: the platform then sets `WEBSITE_AUTH_ENABLED`. Without it the header could have been written by
anyone, so no caller is admitted at all (fail closed). Locally the local host stands in for the
platform in the same two ways (local/host/principal.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sync.ops.errors import OpsError


class Role(StrEnum):
    """The app roles of the ops API (their values are what Entra ID puts in the token)."""

    READ = "Sync.Read"
    OPERATE = "Sync.Operate"


# The ops routes (function names in function_app.py) that only read. Every other route needs
# Sync.Operate.
READ_ROUTES: Final = frozenset({"ops_staff_list", "ops_staff_detail", "ops_poison_list"})

PRINCIPAL_HEADER: Final = "x-ms-client-principal"
# Set by the platform (never by the templates) while App Service Authentication is on.
AUTHENTICATION_SETTING: Final = "WEBSITE_AUTH_ENABLED"
# Claim types as App Service Authentication maps them, and as they are in the token.
OBJECT_ID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
ROLE_CLAIMS: Final = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass(frozen=True)
class Caller:
    """A signed-in caller: their Entra object id (what the audit records, never a name or an
    e-mail address) and the ops API roles they hold."""

    object_id: str
    roles: frozenset[str]

    def may(self, role: Role) -> bool:
        return role in self.roles or (role is Role.READ and Role.OPERATE in self.roles)


class NotSignedIn(OpsError):
    status = 401
    code = "unauthenticated"

    def __init__(self) -> None:
        super().__init__(
            "not signed in: send a Microsoft Entra ID bearer token for the ops API "
            "(python -m sync.ops signs in by itself; docs/operations.md, Access)"
        )


class MissingRole(OpsError):
    status = 403
    code = "forbidden"

    def __init__(self, caller: Caller, role: Role) -> None:
        super().__init__(
            f"this needs the {role} app role of the ops API, which the caller does not hold; "
            "an administrator grants it (docs/operations.md, Access)"
        )
        self.caller = caller


class AuthenticationOff(OpsError):
    status = 503
    code = "authentication_off"

    def __init__(self) -> None:
        super().__init__(
            "App Service Authentication is off for this app, so no caller can be identified; "
            "the ops API stays closed until it is on (docs/deployment.md)"
        )


def required_role(route: str) -> Role:
    """The role a route needs: Sync.Read for the reads, Sync.Operate for anything else."""
    return Role.READ if route in READ_ROUTES else Role.OPERATE


def platform_authenticates(environment: Mapping[str, str]) -> bool:
    """Whether the platform validates callers and owns the principal headers."""
    return environment.get(AUTHENTICATION_SETTING, "").strip().lower() == "true"


def caller_from_headers(headers: Mapping[str, str]) -> Caller | None:
    """The caller the platform's principal header names; None when there is none, it cannot be
    read, or it carries no object id (a caller the audit could not name is not admitted)."""
    encoded = next((v for k, v in headers.items() if k.lower() == PRINCIPAL_HEADER), "")
    if not encoded.strip():
        return None
    try:
        padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
        document = json.loads(base64.b64decode(padded, validate=True))
    except (ValueError, binascii.Error):
        return None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list):
        return None
    role_types = set(ROLE_CLAIMS)
    if isinstance(document.get("role_typ"), str):
        role_types.add(document["role_typ"])
    object_id: str | None = None
    roles: set[str] = set()
    for claim in claims:
        kind = claim.get("typ") if isinstance(claim, dict) else None
        value = claim.get("val") if isinstance(claim, dict) else None
        if not isinstance(kind, str) or not isinstance(value, str):
            continue
        if kind in OBJECT_ID_CLAIMS and object_id is None:
            object_id = value
        elif kind in role_types:
            roles.add(value)
    if object_id is None or not _GUID.fullmatch(object_id):
        return None
    return Caller(object_id.lower(), frozenset(roles))


def admit(headers: Mapping[str, str], route: str, environment: Mapping[str, str]) -> Caller:
    """The caller, if they may call `route`; otherwise AuthenticationOff (503), NotSignedIn
    (401) or MissingRole (403)."""
    if not platform_authenticates(environment):
        raise AuthenticationOff()
    caller = caller_from_headers(headers)
    if caller is None:
        raise NotSignedIn()
    role = required_role(route)
    if not caller.may(role):
        raise MissingRole(caller, role)
    return caller
