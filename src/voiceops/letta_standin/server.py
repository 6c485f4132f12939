"""Run the stand-in: ``serve()`` prints one ready line and, under the supervisor, sends Ready."""

from __future__ import annotations

import asyncio
import sys
from typing import Final

from aiohttp import web

from voiceops import events
from voiceops.letta_standin.app import build_app

READY_PREFIX: Final = "voiceops letta stand-in listening on "


async def serve(host: str = "127.0.0.1", port: int = 8283, *, token_delay_s: float = 0.02,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or the task is cancelled)."""
    runner = web.AppRunner(build_app(token_delay_s=token_delay_s), access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{host}:{bound}"
        print(f"{READY_PREFIX}{url}", flush=True, file=sys.stdout)
        # Under `voiceops run --sandbox` the supervisor waits for this (a no-op elsewhere).
        events.emit(events.Ready(listen=url))
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
