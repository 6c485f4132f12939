"""Reading a JSON request body within proxy.max_body_bytes (also for chunked bodies)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .context import CTX
from .errors import too_large
from .validation import parse_json_object


async def read_json(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    limit = request.app[CTX].options.max_body_bytes
    try:
        body = await request.read()  # the app's client_max_size is the same limit
    except web.HTTPRequestEntityTooLarge:
        raise too_large(None, limit) from None
    if len(body) > limit:
        raise too_large(len(body), limit)
    return parse_json_object(body, allowed)
