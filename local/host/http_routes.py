"""HTTP triggers served by an ASGI app: route templates, request and response mapping."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import azure.functions as func
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.host.discovery import HttpFunction
from local.host.invocation import FunctionInvoker
from local.host.principal import LocalPrincipal, request_headers

log = logging.getLogger("local.host")

_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}")


def route_pattern(template: str) -> re.Pattern[str]:
    """A regex for an Azure Functions route template (`{id}`, `{id:int}`, `{id?}`, `{*rest}`)."""
    pattern = ""
    position = 0
    template = template.strip("/")
    for match in _PARAMETER.finditer(template):
        literal = template[position : match.start()]
        catch_all, name, optional = match.groups()
        body = f"(?P<{name}>.+)" if catch_all else f"(?P<{name}>[^/]+)"
        if optional or catch_all:
            # "a/{b?}" also matches "a": the slash before an optional segment is optional too.
            if literal.endswith("/"):
                pattern += re.escape(literal[:-1]) + f"(?:/{body})?"
            else:
                pattern += re.escape(literal) + f"{body}?"
        else:
            pattern += re.escape(literal) + body
        position = match.end()
    pattern += re.escape(template[position:])
    return re.compile(f"^{pattern}$", re.IGNORECASE)


@dataclass(frozen=True)
class BoundRoute:
    function: HttpFunction
    pattern: re.Pattern[str]


def build_http_app(
    functions: list[HttpFunction],
    route_prefix: str,
    invoker: FunctionInvoker,
    is_healthy: Callable[[], bool],
    *,
    principal: LocalPrincipal | None = None,
) -> Starlette:
    routes = [BoundRoute(f, route_pattern(f.route)) for f in functions]
    prefix = f"/{route_prefix}" if route_prefix else ""
    serves_health = any(r.pattern.match("health") for r in routes)

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return Response(status_code=404)
        relative = path[len(prefix) :].strip("/")
        if relative == "health" and not serves_health and request.method == "GET":
            healthy = is_healthy()
            return JSONResponse(
                {"status": "healthy" if healthy else "starting"},
                status_code=200 if healthy else 503,
            )
        method_allowed = False
        for route in routes:
            match = route.pattern.match(relative)
            if match is None:
                continue
            methods = route.function.methods
            if methods is not None and request.method not in methods:
                method_allowed = True
                continue
            return await _invoke(route.function, request, match, invoker, principal)
        return Response(status_code=405 if method_allowed else 404)

    every_method = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=every_method)])


async def _invoke(
    function: HttpFunction,
    request: Request,
    match: re.Match[str],
    invoker: FunctionInvoker,
    principal: LocalPrincipal | None,
) -> Response:
    body = await request.body()
    http_request = func.HttpRequest(
        method=request.method,
        url=str(request.url),
        # As behind App Service Authentication: the caller's identity headers are the host's.
        headers=request_headers(request.headers, principal),
        params=dict(request.query_params),
        route_params={k: v for k, v in match.groupdict().items() if v is not None},
        body=body,
    )
    try:
        result = await invoker.invoke(
            function.user_function,
            function.trigger_arg,
            http_request,
            function.outputs,
            function_name=function.name,
            traceparent=request.headers.get("traceparent"),
        )
    except Exception:
        # The real host answers 500 with no details; the worker logs the exception.
        log.exception("Executed 'Functions.%s' (Failed)", function.name)
        return Response(status_code=500)
    if result is None:
        return Response(status_code=204)
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items() if k.lower() != "content-length"}
        media_type = result.mimetype
        if result.charset and media_type and "charset" not in media_type:
            media_type = f"{media_type}; charset={result.charset}"
        if "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = media_type or "text/plain"
        return Response(result.get_body(), status_code=result.status_code, headers=headers)
    return Response(str(result), media_type="text/plain")
