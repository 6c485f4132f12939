"""CORS on every route, as the Go server does it (rs/cors in `pkg/service/server.go`).

Any origin is allowed (tokens are the security): a preflight (OPTIONS with Origin and
Access-Control-Request-Method) is answered 204 on any path with the origin echoed, the
requested method (if allowed) and headers, and a one-day max age; every other response to a
request with an Origin gets Access-Control-Allow-Origin and Expose-Headers.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

ALLOWED_METHODS = frozenset({"OPTIONS", "HEAD", "GET", "POST", "PATCH", "DELETE"})
MAX_AGE_S = 86400


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight_headers(origin: str, method: str, requested_headers: str) -> dict[str, str]:
    """Headers of a preflight answer; none but Vary when the method is not allowed (rs/cors)."""
    headers = {"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
    if method.upper() not in ALLOWED_METHODS:
        return headers
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = method.upper()
    if requested_headers.strip():
        headers["Access-Control-Allow-Headers"] = requested_headers
    headers["Access-Control-Max-Age"] = str(MAX_AGE_S)
    return headers


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_preflight(request):
        return web.Response(status=204, headers=preflight_headers(
            request.headers["Origin"],
            request.headers["Access-Control-Request-Method"],
            request.headers.get("Access-Control-Request-Headers", ""),
        ))
    return await handler(request)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: reaches errors and WebSocket upgrades too, not only handler returns."""
    if _is_preflight(request):
        return
    response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "*"


def setup_cors(app: web.Application) -> None:
    app.middlewares.append(cors_middleware)
    app.on_response_prepare.append(add_cors_headers)
