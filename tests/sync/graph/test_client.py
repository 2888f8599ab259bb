"""The Graph client's middleware: what the service relies on stays (redirects followed, `$`
query options decoded, the SDK's User-Agent), what it never uses is left out."""

from __future__ import annotations

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder

from sync.graph.client import LEFT_OUT_MIDDLEWARE, _http_client, build_graph_client
from tests.sync.loopback_settings import loopback_settings

USER_ID = "4f1c2e3a-0000-4000-8000-000000000001"


def middleware_names(client: httpx.AsyncClient) -> list[str]:
    """The middleware a request passes through, first to last."""
    names = []
    middleware = client._transport.pipeline._first_middleware  # type: ignore[attr-defined]
    while middleware is not None:
        names.append(type(middleware).__name__)
        middleware = getattr(middleware, "next", None)
    return names


def test_the_middleware_the_service_never_uses_is_left_out() -> None:
    names = middleware_names(_http_client(None))

    assert not {kind.__name__ for kind in LEFT_OUT_MIDDLEWARE} & set(names)
    assert {"RedirectHandler", "ParametersNameDecodingHandler", "UserAgentHandler"} <= set(names)


async def test_a_graph_request_follows_a_redirect_with_its_query_options_decoded() -> None:
    seen: list[httpx.Request] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            moved = str(request.url).replace("/v1.0/", "/v1.0/moved/")
            return httpx.Response(302, headers={"Location": moved})
        return httpx.Response(200, json={"value": []})

    client = build_graph_client(loopback_settings(), transport=httpx.MockTransport(graph))
    options = RequestConfiguration(
        query_parameters=EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
            select=["subject"]
        )
    )
    events = await client.users.by_user_id(USER_ID).events.get(options)

    assert events is not None
    assert events.value == []
    assert [request.url.path for request in seen] == [
        f"/v1.0/users/{USER_ID}/events",
        f"/v1.0/moved/users/{USER_ID}/events",
    ]
    assert seen[0].url.params["$select"] == "subject"
    assert "kiota-python" in seen[0].headers["User-Agent"]
