"""A turn's answer: the whole ``LettaResponse``, or the SSE stream with its faults applied.

The stream has the real server's order: ``ping``, N ``assistant_message`` token deltas (one
message id), ``stop_reason``, ``usage_statistics``, ``[DONE]``. Faults: a slow first token
(pings every second meanwhile), an error event mid-stream (``stop_reason llm_api_error`` then
``event: error`` with a ``LettaErrorMessage``, as 0.16.8 sends), or a cut connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from voiceops.letta_standin import shapes
from voiceops.letta_standin.brain import reply, tokens
from voiceops.letta_standin.state import Faults

PING_INTERVAL_S: Final = 1.0


def user_text(body: Mapping[str, Any]) -> str | None:
    """The user's words from ``input`` or the last user entry of ``messages``; None if none."""
    value = body.get("input")
    if value is None:
        users = [m for m in body.get("messages") or [] if isinstance(m, dict)
                 and m.get("role") == "user"]
        value = users[-1].get("content") if users else None
    if isinstance(value, list):
        value = " ".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return value if isinstance(value, str) else None


def is_sdk_v1(headers: Mapping[str, str]) -> bool:
    """The real server's rule: Stainless SDKs send their package version."""
    agent = headers.get("User-Agent", "")
    return bool(headers.get("X-Stainless-Package-Version")) or agent.startswith(
        ("letta-client/", "@letta-ai/letta-client/"))


def whole_response(turns: list[str]) -> dict[str, Any]:
    text = reply(turns)
    ids = (shapes.new_id("message"), shapes.new_id("step"), shapes.new_id("run"))
    return {"messages": [shapes.assistant_message(*ids, text)], "stop_reason": shapes.stop_reason(),
            "usage": shapes.usage(len(tokens(text))), "logprobs": None, "turns": None}


async def _slow_start(resp: web.StreamResponse, run_id: str, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + delay_s
    while (left := until - loop.time()) > 0:
        await asyncio.sleep(min(PING_INTERVAL_S, left))
        await resp.write(shapes.sse(shapes.ping(run_id)))


async def stream_reply(request: web.Request, turns: list[str], faults: Faults,
                       token_delay_s: float, *, tokens_wanted: bool = True) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    message_id, step_id, run_id = (shapes.new_id(p) for p in ("message", "step", "run"))
    await resp.write(shapes.sse(shapes.ping(run_id)))
    if faults.first_token_delay_s:
        await _slow_start(resp, run_id, faults.first_token_delay_s)
    text = reply(turns)
    chunks = tokens(text) if tokens_wanted else [text]
    for i, chunk in enumerate(chunks):
        if i == faults.error_after_tokens:
            await resp.write(shapes.sse(shapes.stop_reason("llm_api_error")))
            await resp.write(shapes.sse(shapes.error_message(run_id), event="error"))
            await resp.write(shapes.DONE)
            return resp
        if i == faults.drop_after_tokens:
            assert request.transport is not None
            request.transport.abort()  # no chunked terminator: the client sees a broken body
            return resp
        if i:
            await asyncio.sleep(faults.token_delay_s or token_delay_s)
        await resp.write(shapes.sse(shapes.assistant_message(message_id, step_id, run_id, chunk)))
    await resp.write(shapes.sse(shapes.stop_reason()))
    await resp.write(shapes.sse(shapes.usage(len(chunks))))
    await resp.write(shapes.DONE)
    return resp
