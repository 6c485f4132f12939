"""Custom ``workers.entrypoint`` targets for the worker tests (imported in the job process).

The worker under test gets this directory on PYTHONPATH, so ``wk_entrypoints:record_metadata``
is an operator-style entrypoint that voiceops did not write.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from livekit.agents import JobContext

from voiceops.agent import basic

OUT_ENV = "VOICEOPS_TEST_OUT"


async def record_metadata(ctx: JobContext) -> None:
    """Write the metadata to ``$VOICEOPS_TEST_OUT/<job id>.json``, then act as the basic agent."""
    Path(os.environ[OUT_ENV], f"{ctx.job.id}.json").write_text(ctx.job.metadata, encoding="utf-8")
    await basic.entrypoint(ctx)


async def crash(ctx: JobContext) -> None:
    """Fail before joining, like an agent with a broken setup."""
    raise RuntimeError("wk_entrypoints.crash: deliberate failure")


async def hold(ctx: JobContext) -> None:
    """Join and stay until the job is shut down, like a call in progress through a drain (the
    basic agent leaves an empty room as soon as its worker drains)."""
    await ctx.connect()
    await asyncio.Event().wait()
