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
