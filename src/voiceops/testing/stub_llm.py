"""A stub OpenAI-compatible LLM on loopback: the model behind a real Letta server in tests.

``python -m voiceops.testing.stub_llm --port 0`` serves ``GET /v1/models``,
``POST /v1/embeddings`` and ``POST /v1/chat/completions`` (streamed or not). It answers with
the stand-in's deterministic brain from the user turns Letta sends it, as plain assistant
content (no tool call), which ends a ``letta_v1_agent`` turn. Tokens stream with a small delay
so "the first sentence arrives before the reply ends" is observable through Letta too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from voiceops.letta_standin.brain import reply, tokens

MODEL_ID = "stub-model"
READY_PREFIX = "voiceops stub LLM listening on "
DELAY_KEY = web.AppKey("token_delay_s", float)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def user_turns(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The caller's words from an OpenAI message list (older Letta agents wrap them in JSON)."""
    turns = []
    for m in messages:
        if m.get("role") != "user":
            continue
        text = _text(m.get("content"))
        try:
            wrapped = json.loads(text)
        except ValueError:
            wrapped = None
        if isinstance(wrapped, dict):
            if wrapped.get("type") not in (None, "user_message"):
                continue  # heartbeats, login and system alerts are not the caller speaking
            text = str(wrapped.get("message", ""))
        turns.append(text)
    return turns


def _chunk(cid: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": MODEL_ID, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    text = reply(user_turns(body.get("messages", [])))
    cid = f"chatcmpl-stub-{time.monotonic_ns()}"
    usage = {"prompt_tokens": 10, "completion_tokens": len(tokens(text)),
             "total_tokens": 10 + len(tokens(text))}
    if not body.get("stream"):
        return web.json_response({
            "id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_chunk(cid, {"role": "assistant", "content": ""}))
    for tok in tokens(text):
        await asyncio.sleep(request.app[DELAY_KEY])
        await resp.write(_chunk(cid, {"content": tok}))
    await resp.write(_chunk(cid, {}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        last = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": MODEL_ID, "choices": [], "usage": usage}
        await resp.write(b"data: " + json.dumps(last).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [
        {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "voiceops"}]})


async def embeddings(request: web.Request) -> web.Response:
    body = await request.json()
    inputs = body.get("input", [])
    inputs = [inputs] if isinstance(inputs, str) else inputs
    dims = int(body.get("dimensions") or 1536)
    data = [{"object": "embedding", "index": i, "embedding": [0.001 * (i + 1)] * dims}
            for i in range(len(inputs))]
    return web.json_response({"object": "list", "data": data, "model": body.get("model", ""),
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def build_app(token_delay_s: float) -> web.Application:
    app = web.Application()
    app[DELAY_KEY] = token_delay_s
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


async def _serve(host: str, port: int, token_delay_s: float) -> None:
    runner = web.AppRunner(build_app(token_delay_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"{READY_PREFIX}http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m voiceops.testing.stub_llm")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token-delay-s", type=float, default=0.03)
    args = p.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.token_delay_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
