"""Reading a request body within proxy.max_body_bytes and a read deadline (also chunked bodies).

A body that is too large, arrives too slowly, or stops halfway (the client hung up) is the
client's problem: a 4xx in the error shape, counted as ``bad_request``, never a trace.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .context import CTX
from .errors import ApiError, too_large
from .validation import parse_json_object

# What a body read raises when the client sends less than it announced and goes away.
CLIENT_GONE = (HttpProcessingError, ConnectionError, EOFError)


async def read_body(request: web.Request) -> bytes:
    """The whole body, or an :class:`ApiError` (413 too large, 408 too slow, 400 cut short)."""
    opts = request.app[CTX].options
    limit = opts.max_body_bytes
    try:
        async with asyncio.timeout(opts.body_timeout_s):
            body = await request.read()  # the app's client_max_size is the same limit
    except web.HTTPRequestEntityTooLarge:
        raise too_large(None, limit) from None
    except TimeoutError:
        raise ApiError(408, "request_timeout",
                       f"the request body did not arrive within {opts.body_timeout_s:g} s",
                       headers={"Connection": "close"}) from None
    except CLIENT_GONE:
        raise ApiError(400, "incomplete_body",
                       "the request body ended before its announced length") from None
    if len(body) > limit:
        raise too_large(len(body), limit)
    return body


async def read_json(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    return parse_json_object(await read_body(request), allowed)
