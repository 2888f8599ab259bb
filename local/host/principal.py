"""The local host's stand-in for App Service Authentication.

In Azure, App Service Authentication validates each caller's Microsoft Entra ID token, removes any
`X-MS-CLIENT-PRINCIPAL*` or `X-MS-TOKEN-*` header the caller sent, adds the caller's claims as
`X-MS-CLIENT-PRINCIPAL`, and tells the app it is on with `WEBSITE_AUTH_ENABLED`. Locally there is
no Entra ID, so the host does the same with a principal it makes up, chosen by one local-only
switch:

    LOCAL_PRINCIPAL_ROLES   unset or empty: a local operator holding both ops roles
                            (Sync.Read,Sync.Operate), so the demo, the command line and tests
                            work without signing in;
                            a comma-separated list: a principal holding exactly those roles;
                            "none": no principal, as for a caller who did not sign in.

Every request gets that principal, whatever it sent: a header from the caller is never passed on.
The switch lives only here, in the local host, which is never deployed (`.funcignore` leaves out
`local/`); in Azure the real Functions host runs and nothing reads it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

PRINCIPAL_SWITCH: Final = "LOCAL_PRINCIPAL_ROLES"
NO_PRINCIPAL: Final = "none"
# The app's two ops roles (sync/ops/auth.py Role); tests/local/host keeps the two in step.
DEFAULT_ROLES: Final = ("Sync.Read", "Sync.Operate")
# What the platform sets while App Service Authentication is on.
AUTHENTICATION_SETTING: Final = "WEBSITE_AUTH_ENABLED"

_PLATFORM_HEADER_PREFIXES: Final = ("x-ms-client-principal", "x-ms-token-")
_OBJECT_ID_CLAIM: Final = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_ROLE_CLAIM: Final = "roles"


@dataclass(frozen=True)
class LocalPrincipal:
    """The signed-in caller the local host reports for every request. Like a real sign-in it
    carries a name and an e-mail address, so tests can check the app never records them."""

    roles: tuple[str, ...]
    object_id: str = "00000000-0000-4000-8000-00000000c0de"
    name: str = "Local Operator"
    email: str = "local.operator@localhost.invalid"

    def headers(self) -> dict[str, str]:
        """The headers App Service Authentication adds for a Microsoft Entra ID caller."""
        claims = [
            {"typ": _OBJECT_ID_CLAIM, "val": self.object_id},
            {"typ": "name", "val": self.name},
            {"typ": "preferred_username", "val": self.email},
            *({"typ": _ROLE_CLAIM, "val": role} for role in self.roles),
        ]
        document = {
            "auth_typ": "aad",
            "claims": claims,
            "name_typ": "name",
            "role_typ": _ROLE_CLAIM,
        }
        return {
            "x-ms-client-principal": base64.b64encode(json.dumps(document).encode()).decode(),
            "x-ms-client-principal-id": self.object_id,
            "x-ms-client-principal-name": self.email,
            "x-ms-client-principal-idp": "aad",
        }


def principal_from_environment(environment: Mapping[str, str]) -> LocalPrincipal | None:
    """The principal the switch asks for; None for `none`."""
    value = environment.get(PRINCIPAL_SWITCH, "").strip()
    if value.lower() == NO_PRINCIPAL:
        return None
    if not value:
        return LocalPrincipal(DEFAULT_ROLES)
    return LocalPrincipal(tuple(role.strip() for role in value.split(",") if role.strip()))


def stand_in_for_authentication() -> None:
    """Tell the app, as the platform would, that callers are authenticated by its host."""
    os.environ[AUTHENTICATION_SETTING] = "True"


def request_headers(
    incoming: Mapping[str, str], principal: LocalPrincipal | None
) -> dict[str, str]:
    """The headers the function sees: the caller's, without any it may not set, plus the
    principal's."""
    headers = {
        name: value
        for name, value in incoming.items()
        if not name.lower().startswith(_PLATFORM_HEADER_PREFIXES)
    }
    if principal is not None:
        headers.update(principal.headers())
    return headers
