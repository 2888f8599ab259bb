"""The transport under the Graph and Coconut clients, against a real local HTTP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from sync.http_transport import PooledTransport


async def _echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    return web.json_response(
        {
            "path": request.raw_path,
            "body": body.decode(),
            "header": request.headers.get("X-One"),
            "client_port": request.transport.get_extra_info("peername")[1]
            if request.transport
            else None,
        },
        status=201,
    )


async def _drop(request: web.Request) -> web.StreamResponse:
    # The answer is lost: the connection closes before a status line is sent.
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(0.1)
    return web.Response()


async def _half(request: web.Request) -> web.StreamResponse:
    # Promises more body than it sends, then hangs up.
    response = web.StreamResponse(headers={"Content-Length": "100"})
    await response.prepare(request)
    await response.write(b"{" * 10)
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/drop", _drop)
    app.router.add_route("*", "/half", _half)
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=PooledTransport()) as client:
        yield client


async def test_a_request_reaches_the_server_as_httpx_encoded_it(
    server: str, client: httpx.AsyncClient
) -> None:
    # Graph ids hold `=`, `+` and `/`; re-quoting the path would send another id.
    path = "/users/U%2F7%20%C3%BC/events/AAMk%2Fa%2Bb%3Dc%26d%252F"

    response = await client.post(server + path, json={"a": "é"}, headers={"X-One": "1"})

    assert response.status_code == 201
    assert response.json() | {"client_port": None} == {
        "path": path,
        "body": '{"a":"é"}',
        "header": "1",
        "client_port": None,
    }


async def test_one_connection_carries_requests_one_after_another(
    server: str, client: httpx.AsyncClient
) -> None:
    answers = [await client.get(server + "/x") for _ in range(3)]

    assert len({answer.json()["client_port"] for answer in answers}) == 1


async def test_a_lost_answer_is_a_transport_error_that_names_no_url(
    server: str, client: httpx.AsyncClient
) -> None:
    with pytest.raises(httpx.TransportError) as raised:
        await client.post(server + "/drop", json={})

    assert "127.0.0.1" not in str(raised.value)
    assert "drop" not in str(raised.value)


async def test_a_body_cut_short_is_a_read_error(server: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadError):
        await client.get(server + "/half")


async def test_no_server_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")
