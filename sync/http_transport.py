"""The connection pool under the Graph and Coconut clients: httpx's API on aiohttp's pool.

msgraph-sdk (kiota) and the Coconut client speak httpx. httpx's own pool (httpcore) checks
every connection it holds, with a system call each, whenever a request starts or ends: in a
burst that was a tenth of the worker's CPU, and measured alone it cost 2-4 ms of CPU per request
with 4-64 requests in flight, against 0.6-1.1 ms for the same requests on aiohttp's pool (which
the storage SDKs use already). This transport hands each request, as httpx built it, to aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import httpx
import yarl

# Per process, as httpx's defaults: Graph's own limit (4 per mailbox) is kept by
# `sync.graph.calls`, so this is only a ceiling for many mailboxes at once.
_MAX_CONNECTIONS: Final = 100
_KEEPALIVE_SECONDS: Final = 5.0


def _transport_error(error: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error callers expect (`sync.graph.calls`, `sync.coconut.api`). The type only:
    aiohttp's messages quote the URL, which names the mailbox."""
    name = type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(name, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(name, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(name, request=request)
    if isinstance(error, (aiohttp.ClientOSError, aiohttp.ClientPayloadError)):
        return httpx.ReadError(name, request=request)
    return httpx.RemoteProtocolError(name, request=request)


class _AnswerBody(httpx.AsyncByteStream):
    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except aiohttp.ClientError as error:
            raise _transport_error(error, self._request) from None

    async def aclose(self) -> None:
        # A body read to its end has given the connection back already; otherwise it closes.
        self._answer.release()


class PooledTransport(httpx.AsyncBaseTransport):
    """Sends each request on one aiohttp session, made on the first request in the loop that
    runs it (like the storage SDKs' sessions, so one per process)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=_MAX_CONNECTIONS,
                keepalive_timeout=_KEEPALIVE_SECONDS,
                ssl=httpx.create_ssl_context(),
            )
            # Cookies and decompression are httpx's business, as are redirects (below).
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            answer = await self._open().request(
                request.method,
                # As httpx encoded it: aiohttp would otherwise re-quote the path, and an id
                # with `=` or `&` in it would reach Graph other than it was sent.
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        except aiohttp.ClientError as error:
            raise _transport_error(error, request) from None
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=_AnswerBody(answer, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
