"""The one error shape of every route: ``{"success": false, "error": {"code", "message"}}``.

Handlers and middlewares raise :class:`ApiError`; the error middleware renders it. ``reason``
is the dispatch outcome label (``voiceops_dispatch_requests_total{outcome}``) the error counts
under when it ends a dispatch request.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
LIVEKIT_ERROR = "livekit_error"
TIMEOUT = "timeout"


class ApiError(Exception):
    """An error answered to the client; its message is safe to show (no secret, no trace)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reason: str = BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message, reason=BAD_REQUEST)


def too_large(size: int | None, limit: int) -> ApiError:
    what = f"is {size} bytes" if size is not None else "is too large"
    return ApiError(413, "body_too_large",
                    f"the request body {what}; the limit is {limit} bytes (proxy.max_body_bytes)")


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {"success": False, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def render(err: ApiError) -> web.Response:
    return error_response(err.status, err.code, err.message, err.headers)


# aiohttp's own HTTP errors (router 404/405, body too large) mapped into our shape.
_HTTP_CODES: Mapping[int, tuple[str, str]] = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed on this route"),
    413: ("body_too_large", "request body too large"),
}


def from_http_exception(exc: web.HTTPException) -> ApiError:
    code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason or "HTTP error"))
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    reason = RATE_LIMITED if exc.status == 429 else BAD_REQUEST
    return ApiError(exc.status, code, message, reason=reason, headers=headers)
