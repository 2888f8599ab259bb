"""One GraphServiceClient per process, authenticated as the settings say."""

from __future__ import annotations

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.authentication import (
    AnonymousAuthenticationProvider,
    AuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import (
    BodyInspectionHandler,
    HeadersInspectionHandler,
    RetryHandler,
    UrlReplaceHandler,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from sync.http_tracing import TracedTransport
from sync.http_transport import PooledTransport
from sync.settings import Settings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"

# Default middleware left out of every Graph request:
# - RetryHandler sleeps inside the request for up to 180 s; retries are done by
#   `sync.graph.calls` instead, which sends long waits back to the queue as a delay.
# - UrlReplaceHandler rewrites `/users/me-token-to-replace` to `/me`, which an application
#   (no signed-in user) never calls; the inspection handlers copy headers and bodies for request
#   options that are never set. Each still ran on every request: together about a fifth of the
#   middleware's CPU per Graph request, measured in a burst.
LEFT_OUT_MIDDLEWARE = (
    RetryHandler,
    UrlReplaceHandler,
    HeadersInspectionHandler,
    BodyInspectionHandler,
)


def _credential(settings: Settings) -> AsyncTokenCredential:
    from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential

    if settings.graph_auth == "client_secret":
        # Settings validation guarantees all three for client_secret.
        return ClientSecretCredential(
            settings.azure_tenant_id or "",
            settings.azure_client_id or "",
            settings.azure_client_secret.get_secret_value() if settings.azure_client_secret else "",
        )
    if settings.azure_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    return ManagedIdentityCredential()


def _http_client(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    middleware = [
        m
        for m in KiotaClientFactory.get_default_middleware(None)
        if not isinstance(m, LEFT_OUT_MIDDLEWARE)
    ]
    # Under every middleware, so each span shows the request as sent (sync.http_tracing).
    traced = TracedTransport(transport or PooledTransport(), peer="graph")
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), transport=traced)
    configured: httpx.AsyncClient = GraphClientFactory.create_with_custom_middleware(
        middleware=middleware, client=client
    )
    return configured


def build_graph_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> GraphServiceClient:
    """`transport` sends the requests (tests give a mock one); each is traced."""
    auth: AuthenticationProvider
    if settings.graph_auth == "none":
        auth = AnonymousAuthenticationProvider()
    else:
        host = httpx.URL(settings.graph_base_url).host
        auth = AzureIdentityAuthenticationProvider(
            _credential(settings), scopes=[GRAPH_SCOPE], allowed_hosts=[host]
        )
    adapter = GraphRequestAdapter(auth, client=_http_client(transport))
    adapter.base_url = settings.graph_base_url
    return GraphServiceClient(request_adapter=adapter)
