"""``workers.entrypoint`` targets for the end-to-end tests (imported in the job processes)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from livekit.agents import JobContext

OUT_ENV = "VOICEOPS_E2E_OUT"
CALL_S = 4.0


async def short_call(ctx: JobContext) -> None:
    """Join, "talk" for a few seconds, write a marker that the call finished, leave."""
    await ctx.connect()
    Path(os.environ[OUT_ENV], f"{ctx.job.id}.started").touch()
    await asyncio.sleep(CALL_S)  # the call itself: what a drain must not cut
    Path(os.environ[OUT_ENV], f"{ctx.job.id}.finished").touch()
    ctx.shutdown("call finished")


HOLD_JOIN = "hold-join"  # while this file exists in VOICEOPS_E2E_OUT, "-joining" rooms wait


async def long_call(ctx: JobContext) -> None:
    """A call that lasts a minute; in a room ending in "-joining" the agent first waits (while
    the test's marker file exists) before it joins: a dispatch caught between JobRequest and
    join."""
    marker = Path(os.environ[OUT_ENV], HOLD_JOIN)
    if ctx.job.room.name.endswith("-joining"):
        for _ in range(600):
            if not marker.exists():
                break
            await asyncio.sleep(0.1)
    await ctx.connect()
    await asyncio.sleep(60)
    ctx.shutdown("call finished")
