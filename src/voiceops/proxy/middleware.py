"""Middlewares, outermost first: edge (errors, CORS headers, timing), CORS guard, body limit,
rate limit, API-key auth. Everything a client can get wrong is answered in the error shape."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from voiceops import events

from .context import API_PREFIX, CTX, DISPATCH_PATH, TOKEN_PATH, ProxyContext
from .errors import (
    LIVEKIT_ERROR,
    RATE_LIMITED,
    UNAUTHORIZED,
    ApiError,
    from_http_exception,
    render,
    too_large,
)
from .ratelimit import retry_after_header

logger = logging.getLogger("voiceops.proxy")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T0_KEY = web.RequestKey("voiceops_t0", float)
ROOM_KEY = web.RequestKey("voiceops_room", str)
_PREFLIGHT_MAX_AGE_S = 600


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Times the request, renders every failure in the error shape, adds CORS headers."""
    ctx = request.app[CTX]
    request[T0_KEY] = ctx.clock()
    try:
        response = await handler(request)
    except ApiError as err:
        response = _fail(request, err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _fail(request, from_http_exception(exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        # The trace goes to our log only; the client gets a generic 500.
        logger.exception("unhandled_error path=%s", request.path)
        response = _fail(request, internal_error())
    origin = request.headers.get("Origin")
    if origin and ctx.origin_allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin.rstrip("/")
    response.headers.setdefault("Vary", "Origin")
    return response


def internal_error() -> ApiError:
    return ApiError(500, "internal", "internal error (see the proxy log)", reason=LIVEKIT_ERROR)


def _fail(request: web.Request, err: ApiError) -> web.Response:
    return failure(request.app[CTX], request.path, request.method, request.get(ROOM_KEY, ""),
                   request[T0_KEY], err)


def failure(ctx: ProxyContext, path: str, method: str, room: str, t0: float,
            err: ApiError) -> web.Response:
    """The error answer, its ``dispatch_failed`` event (a dispatch) and its log line."""
    if path == DISPATCH_PATH and method == "POST":
        latency_s = max(0.0, ctx.clock() - t0)
        events.emit(events.DispatchFailed(room=room, agent_name=ctx.options.agent_name,
                                          reason=err.reason, latency_s=latency_s,
                                          message=err.message))
    level = logging.WARNING if err.status >= 500 else logging.INFO
    logger.log(level, "request_failed path=%s status=%d code=%s message=%s", path, err.status,
               err.code, err.message)
    return render(err)


@web.middleware
async def cors_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/api/* from a browser: only allow-listed origins; answers preflights itself."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin is not None and not request.app[CTX].origin_allowed(origin):
        raise ApiError(403, "origin_not_allowed",
                       f"origin {origin[:100]!r} is not in proxy.allowed_origins",
                       reason=UNAUTHORIZED)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S)})
    return await handler(request)


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A declared Content-Length over the limit is refused before anything is read."""
    limit = request.app[CTX].options.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length, limit)
    return await handler(request)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per client address, before auth, so guessing keys is throttled too."""
    limiter = request.app[CTX].limiter
    if not request.path.startswith(API_PREFIX) or not limiter.enabled:
        return await handler(request)
    decision = limiter.check(request.remote or "unknown")
    if not decision.allowed:
        retry = retry_after_header(decision.retry_after_s)
        raise ApiError(429, "rate_limited",
                       f"too many requests from this client; retry in {retry} s "
                       "(proxy.rate_limit_per_minute)",
                       reason=RATE_LIMITED, headers={"Retry-After": retry})
    return await handler(request)


@web.middleware
async def api_key_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    secrets = request.app[CTX].secrets
    keys = secrets.api_keys
    if request.path == TOKEN_PATH and secrets.token_api_keys:
        keys = secrets.token_api_keys  # proxy.token_api_keys_file: tokens have their own keys
    if keys and request.path.startswith(API_PREFIX):
        check_api_key(request.headers.get("Authorization", ""), keys)
    return await handler(request)


def check_api_key(header: str, keys: frozenset[str]) -> None:
    """401 without a usable ``Bearer`` credential, 403 for a key that is not ours."""
    scheme, _, key = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <key>' "
                       "(this proxy requires an API key)", reason=UNAUTHORIZED,
                       headers={"WWW-Authenticate": 'Bearer realm="voiceops"'})
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <key>'",
                       reason=UNAUTHORIZED,
                       headers={"WWW-Authenticate": 'Bearer realm="voiceops"'})
    if not key_matches(key.strip(), keys):
        raise ApiError(403, "forbidden", "the API key is not valid", reason=UNAUTHORIZED)


def key_matches(candidate: str, keys: frozenset[str]) -> bool:
    """Constant-time over equal-length digests, and every key is compared (no early exit)."""
    digest = hashlib.sha256(candidate.encode()).digest()
    found = False
    for key in keys:
        found |= hmac.compare_digest(digest, hashlib.sha256(key.encode()).digest())
    return found


MIDDLEWARES = (edge, cors_guard, body_limit, rate_limit, api_key_auth)
