"""How the ops command line signs in: a Microsoft Entra ID access token for the ops API, sent as a
bearer token; no key in an environment variable.

The token comes from azure-identity: `DefaultAzureCredential` takes whatever it finds first (a
managed identity on an Azure VM or pipeline agent, a workload identity, the Azure CLI's or the
Azure Developer CLI's sign-in, ...), or `DeviceCodeCredential` signs in with a code on another
device. The audience is the ops API's app registration (`api://<client id>`, deployment output
`SYNC_OPS_AUDIENCE`). Against the local host nothing is needed: it signs every caller in itself
(local/host/principal.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

# A token this close to expiry is renewed before it is sent.
RENEW_BEFORE_SECONDS: Final = 300
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class NoAudience(Exception):
    """A remote app was named without the ops API's audience to sign in for."""


def scope_for(audience: str) -> str:
    """The scope that asks Entra ID for a token carrying the caller's app roles."""
    audience = audience.strip().rstrip("/")
    if "://" not in audience:  # a bare client id
        audience = f"api://{audience}"
    return f"{audience}/.default"


def is_local(app_url: str) -> bool:
    return (urlsplit(app_url).hostname or "") in LOOPBACK_HOSTS


class EntraToken(httpx.Auth):
    """Adds `Authorization: Bearer <token>`, asking the credential again only near expiry (the
    Azure CLI credential runs `az` on every request otherwise)."""

    def __init__(self, credential: TokenCredential, audience: str) -> None:
        self._credential = credential
        self._scope = scope_for(audience)
        self._token: AccessToken | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._current()}"
        yield request

    def _current(self) -> str:
        if self._token is None or self._token.expires_on - RENEW_BEFORE_SECONDS < time.time():
            self._token = self._credential.get_token(self._scope)
        return self._token.token


def credential(*, device_code: bool, tenant_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, DeviceCodeCredential

    if device_code:
        return DeviceCodeCredential(tenant_id=tenant_id, prompt_callback=_prompt)
    return DefaultAzureCredential()


def _prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    # On stderr, so that --json output stays parseable.
    print(
        f"To sign in, open {verification_uri} and enter the code {user_code} "
        f"(valid until {expires_on:%H:%M:%S} UTC).",
        file=sys.stderr,
    )


def sign_in(
    app_url: str, audience: str | None, *, device_code: bool = False, tenant_id: str | None = None
) -> httpx.Auth | None:
    """How requests to `app_url` authenticate: a token for `audience`, or nothing locally."""
    if audience:
        return EntraToken(credential(device_code=device_code, tenant_id=tenant_id), audience)
    if is_local(app_url):
        return None
    raise NoAudience(
        "set SYNC_OPS_AUDIENCE (or --audience) to the ops API's audience, api://<client id>: "
        "the deployment output of that name, or `azd env get-values`"
    )
