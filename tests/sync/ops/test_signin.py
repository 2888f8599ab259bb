"""How the command line signs in: a bearer token for the ops API's audience, renewed only near
expiry, none against the local host; and what the client makes of the platform's refusals."""

from __future__ import annotations

import time

import httpx
import pytest
from azure.core.credentials import AccessToken

from sync.ops.client import OpsClient, OpsRefused
from sync.ops.signin import EntraToken, NoAudience, is_local, scope_for, sign_in

CLIENT_ID = "3bfd773a-1dad-4f3f-9df1-ae98892a2d08"
APP = "https://func-x.azurewebsites.net"


class FakeCredential:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime))


def client(auth: httpx.Auth | None, seen: list[httpx.Request]) -> OpsClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"counts": {}, "total": 0, "staff": []})

    return OpsClient(
        "https://func-x.azurewebsites.net", auth, transport=httpx.MockTransport(answer)
    )


def test_the_scope_is_the_apis_default_scope() -> None:
    assert scope_for(f"api://{CLIENT_ID}") == f"api://{CLIENT_ID}/.default"
    assert scope_for(f"api://{CLIENT_ID}/") == f"api://{CLIENT_ID}/.default"
    assert scope_for(CLIENT_ID) == f"api://{CLIENT_ID}/.default"


def test_requests_carry_a_bearer_token_asked_for_once_while_it_is_fresh() -> None:
    credential = FakeCredential(lifetime=3600)
    seen: list[httpx.Request] = []
    with client(EntraToken(credential, f"api://{CLIENT_ID}"), seen) as ops:
        ops.staff()
        ops.staff()
    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1", "Bearer token-1"]
    assert credential.scopes == [f"api://{CLIENT_ID}/.default"]
    assert "x-functions-key" not in seen[0].headers


def test_a_token_about_to_expire_is_renewed() -> None:
    credential = FakeCredential(lifetime=60)
    seen: list[httpx.Request] = []
    with client(EntraToken(credential, CLIENT_ID), seen) as ops:
        ops.staff()
        ops.staff()
    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]


def test_the_local_host_needs_no_sign_in_and_a_remote_app_an_audience() -> None:
    assert is_local("http://127.0.0.1:7071")
    assert is_local("http://localhost:7071")
    assert not is_local(APP)
    assert sign_in("http://127.0.0.1:7071", None) is None
    with pytest.raises(NoAudience, match="SYNC_OPS_AUDIENCE"):
        sign_in(APP, None)


@pytest.mark.parametrize(
    ("status", "code"), [(401, "unauthenticated"), (403, "forbidden"), (502, "http_error")]
)
def test_a_refusal_without_the_apis_json_still_says_what_is_wrong(status: int, code: str) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, text=""))
    with OpsClient(APP, transport=transport) as ops, pytest.raises(OpsRefused) as refused:
        ops.staff()
    assert (refused.value.status, refused.value.code) == (status, code)


def test_the_apis_own_refusal_is_passed_on() -> None:
    document = {"error": "this needs the Sync.Operate app role", "code": "forbidden"}
    transport = httpx.MockTransport(lambda _: httpx.Response(403, json=document))
    with OpsClient(APP, transport=transport) as ops, pytest.raises(OpsRefused) as refused:
        ops.command("U-1", "resync")
    assert refused.value.message == document["error"]
