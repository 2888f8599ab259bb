"""JSON batching (`POST /$batch`): up to 20 requests, each run through the normal pipeline, so
each is throttled on its own; at most 4 of one batch run at once against one mailbox."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import defaultdict
from typing import Any

from local.graph_emulator.errors import GraphError, bad_request
from local.graph_emulator.graph_api import GraphApi, GraphRequest, GraphResponse

MAX_BATCH_REQUESTS = 20
MAX_PARALLEL_PER_MAILBOX = 4  # what Graph does for Outlook


def install(api: GraphApi) -> None:
    async def handler(request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        return await run_batch(api, request)

    api.batch_handler = handler


async def run_batch(api: GraphApi, request: GraphRequest) -> GraphResponse:
    items = _parse(request)
    slots: dict[str | None, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(MAX_PARALLEL_PER_MAILBOX)
    )
    done: dict[str, asyncio.Future[GraphResponse]] = {
        item["id"]: asyncio.get_running_loop().create_future() for item in items
    }

    async def run(item: dict[str, Any]) -> None:
        future = done[item["id"]]
        try:
            for dependency in item["dependsOn"]:
                if (await asyncio.shield(done[dependency])).status >= 400:
                    future.set_result(_failed_dependency())
                    return
            sub_request = GraphRequest.from_url(
                item["method"], item["url"], item["headers"], item["body"], request.base_url
            )
            async with slots[api.mailbox_of(sub_request.path)]:
                response = await api.handle(sub_request)
            if response.drop_connection:  # an item cannot drop a connection: it is lost as 503
                response = GraphResponse(
                    503, GraphError(503, "ServiceNotAvailable", "Lost.").body()
                )
            future.set_result(response)
        except Exception as exc:  # one item's crash must not sink the batch
            future.set_exception(exc)

    await asyncio.gather(*(run(item) for item in items), return_exceptions=True)
    responses = []
    for item in items:
        future = done[item["id"]]
        if future.exception() is not None:
            response = GraphResponse(500, GraphError(500, "InternalServerError", "Failed.").body())
        else:
            response = future.result()
        responses.append(_item_response(item["id"], response))
    return GraphResponse(
        200, {"responses": responses}, {"Content-Type": "application/json; charset=utf-8"}
    )


def _parse(request: GraphRequest) -> list[dict[str, Any]]:
    try:
        document = json.loads(request.body or b"null")
    except ValueError:
        raise bad_request("The batch request body is not valid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("requests"), list):
        raise bad_request("A batch request body needs a 'requests' array.")
    raw_items = document["requests"]
    if not raw_items:
        raise bad_request("A batch request needs at least one request.")
    if len(raw_items) > MAX_BATCH_REQUESTS:
        raise bad_request(
            f"The number of requests in the batch ({len(raw_items)}) exceeds the limit of "
            f"{MAX_BATCH_REQUESTS}."
        )
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise bad_request("Every batch request must be a JSON object.")
        item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
        if not isinstance(item_id, str) or not item_id or item_id in seen:
            raise bad_request("Every batch request needs a unique 'id'.")
        if not isinstance(method, str) or not isinstance(url, str) or not url:
            raise bad_request(f"Batch request '{item_id}' needs a 'method' and a 'url'.")
        if "://" in url:
            raise bad_request(f"Batch request '{item_id}' must use a URL relative to /v1.0.")
        depends_on = raw.get("dependsOn") or []
        if not isinstance(depends_on, list) or any(d not in seen for d in depends_on):
            raise bad_request(
                f"Batch request '{item_id}' depends on a request not earlier in the batch."
            )
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict):
            raise bad_request(f"Batch request '{item_id}' has invalid headers.")
        headers = {str(k): str(v) for k, v in headers.items()}
        items.append(
            {
                "id": item_id,
                "method": method.upper(),
                "url": url,
                "headers": headers,
                "body": _body(item_id, raw, headers),
                "dependsOn": [str(d) for d in depends_on],
            }
        )
        seen.add(item_id)
    return items


def _body(item_id: str, raw: dict[str, Any], headers: dict[str, str]) -> bytes:
    if "body" not in raw or raw["body"] is None:
        return b""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if content_type is None:
        raise bad_request(f"Batch request '{item_id}' has a body but no Content-Type header.")
    body = raw["body"]
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode()
    if isinstance(body, str):
        if "json" in content_type.lower():
            try:
                return base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return body.encode()
        return body.encode()
    raise bad_request(f"Batch request '{item_id}' has a body of an unsupported kind.")


def _failed_dependency() -> GraphResponse:
    error = GraphError(424, "FailedDependency", "A request this one depends on failed.")
    return GraphResponse(424, error.body())


def _item_response(item_id: str, response: GraphResponse) -> dict[str, Any]:
    headers = {
        key: value
        for key, value in response.headers.items()
        if key.lower() in ("retry-after", "content-type", "location", "etag", "preference-applied")
    }
    out: dict[str, Any] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body is not None:
        headers.setdefault("Content-Type", "application/json")
        out["body"] = response.body
    return out
