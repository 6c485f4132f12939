"""A real livekit-agents job and a real rtc SDK caller hear each other through the server.

The job does what a voice agent does with media after `ctx.connect()` (default options: v1,
auto-subscribe): it publishes its voice (an 880 Hz tone) and listens to the caller's audio
(a 440 Hz tone); a real AgentSession says a line, whose transcription and agent state the caller
receives. Runs unchanged against a real `livekit-server --dev` with LIVEKIT_URL set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from emulator_helpers import assert_no_children_left
from livekit import api

try:
    from .rtc_client import RtcClient
    from .rtc_fakehub import mint_token
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_client import RtcClient
    from rtc_fakehub import mint_token

pytestmark = [pytest.mark.livekit, pytest.mark.process]

DEADLINE_S = 30.0


@contextlib.asynccontextmanager
async def _call(server: Any, worker: Any, prefix: str) -> AsyncIterator[tuple[RtcClient, str]]:
    """A registered worker and a caller joined to a fresh room; both stopped, no child left."""
    await worker.registered()
    room = f"{prefix}-{time.monotonic_ns()}"
    caller = await RtcClient.start()
    try:
        token = mint_token(room, "caller", key=server.api_key, secret=server.api_secret)
        await caller.send("connect", server.url, token)
        connected = await caller.expect("connected", "failed", timeout_s=DEADLINE_S)
        assert connected["event"] == "connected"
        yield caller, room
        await caller.send("disconnect")
        await caller.expect("disconnected", timeout_s=DEADLINE_S)
    finally:
        await caller.close()
        worker.stop()
    assert_no_children_left(server.pid)


async def test_agent_and_caller_hear_each_other(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """The caller hears the agent's 880 Hz from agent-AJ_…; the agent hears the caller's 440 Hz."""
    worker = workers(livekit_server, "media-agent", echo=True)
    async with _call(livekit_server, worker, "agent-media") as (caller, room):
        await caller.send("tone", "440", "60")
        await caller.expect("published", timeout_s=DEADLINE_S)
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="media-agent", room=room))

        published = await worker.wait_event("agent_published", DEADLINE_S)
        subscribed = await caller.expect("track_subscribed", timeout_s=DEADLINE_S)
        assert (
            subscribed["identity"].startswith("agent-AJ_") and subscribed["sid"] == published["sid"]
        )
        await caller.send("listen", subscribed["sid"], "2")
        heard = await caller.expect("heard", "error", timeout_s=DEADLINE_S)
        assert heard["frames"] >= 100 and heard["rms"] > 1000, heard
        assert abs(heard["dominant_hz"] - 880) <= 10, heard

        agent_heard = await worker.wait_event("agent_heard", DEADLINE_S)
        assert agent_heard["identity"] == "caller" and agent_heard["rms"] > 1000, agent_heard
        assert abs(agent_heard["dominant_hz"] - 440) <= 10, agent_heard


async def test_agent_session_transcription_and_state_reach_the_caller(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """A real AgentSession's `lk.transcription` text stream and `lk.agent.state` reach the
    caller."""
    worker = workers(livekit_server, "say-agent", connect=True)
    async with _call(livekit_server, worker, "agent-say") as (caller, room):
        await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name="say-agent", room=room, metadata='{"say": "hello caller"}'))

        text = await caller.expect("text_received", timeout_s=DEADLINE_S)
        assert text["identity"].startswith("agent-AJ_") and text["topic"] == "lk.transcription"
        assert text["text"].strip() == "hello caller", text
        states = set()
        while "speaking" not in states:
            changed = await caller.expect("attributes_changed", timeout_s=DEADLINE_S)
            assert changed["identity"] == text["identity"]
            states.add(changed["attributes"].get("lk.agent.state"))
        await worker.wait_event("agent_said", DEADLINE_S)
