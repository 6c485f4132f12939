"""The placeholder agent: joins the room, stays while someone is there, leaves.

It stands in for the Letta voice pipeline (a later issue replaces it) and keeps the dispatch
path honest meanwhile: it reads ``letta_agent_id`` from the dispatch metadata, connects (so
the worker reports ``agent_joined``), and ends the job when the last non-agent participant
has left, the room closed, or nobody joined within ``VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S``.
"""

from __future__ import annotations

import logging

from livekit.agents import AutoSubscribe, JobContext

from voiceops.agent.presence import no_human_timeout_s, stay_while_attended
from voiceops.worker.probe import parse_metadata

logger = logging.getLogger("voiceops.agent")


def letta_agent_id(metadata: str) -> str:
    """``letta_agent_id`` from the dispatch metadata; "" when absent or malformed."""
    value = parse_metadata(metadata).get("letta_agent_id", "")
    return value if isinstance(value, str) else ""


async def entrypoint(ctx: JobContext) -> None:
    """The placeholder agent: joins without media, stays while attended (tests, probes)."""
    agent_id = letta_agent_id(ctx.job.metadata)
    logger.info("agent_starting job_id=%s letta_agent_id=%s", ctx.job.id, agent_id or "-")
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)  # no media in the placeholder
    reason = await stay_while_attended(ctx.room, no_human_timeout_s())
    ctx.shutdown(reason=reason)
