"""The voice pipeline as the worker runs it: provider keys checked at start, and a call with
no Letta agent ends as a named failure (not a silent agent in the room)."""

from __future__ import annotations

from typing import Any

import pytest
from livekit import api

from voiceops.config import EX_CONFIG
from voiceops.events import AgentJoined, JobEnded, JobRequest, Ready
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.waiting import wait_for_async

VOICE_AGENT = "voiceops.agent:entrypoint"
NOWHERE = {"url": "ws://127.0.0.1:9", "api_key": "devkey"}


@pytest.mark.process
async def test_worker_without_a_provider_key_exits_78_naming_it(spawn: Any, sink: EventRecorder
                                                                ) -> None:
    """stt = deepgram and no DEEPGRAM_API_KEY: the worker stops at start (78) naming the key."""
    worker = await spawn(**NOWHERE, api_secret="unused", entrypoint=VOICE_AGENT, stt="deepgram")
    assert await worker.wait_exit(60.0) == EX_CONFIG
    log = worker.log_tail()
    assert "voice.stt: provider 'deepgram' needs DEEPGRAM_API_KEY" in log
    assert not sink.of_type(Ready)


@pytest.mark.process
async def test_worker_with_its_key_in_a_credential_starts(spawn: Any, sink: EventRecorder,
                                                          tmp_path: Any) -> None:
    """The same key as a systemd credential file passes the start check: the worker goes on to
    connect to LiveKit (nothing listens there, so it keeps retrying) instead of exiting 78."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "cartesia-api-key").write_text("ca-test\n", encoding="utf-8")
    worker = await spawn(**NOWHERE, api_secret="unused", entrypoint=VOICE_AGENT, tts="cartesia",
                         extra_env={"CREDENTIALS_DIRECTORY": str(creds)})
    await wait_for_async(lambda: "failed to connect to livekit" in worker.log_tail(), 60.0,
                         "the connect failure logged", 0.2)
    assert worker.proc.returncode is None and "CARTESIA_API_KEY" not in worker.log_tail()


@pytest.mark.process
@pytest.mark.livekit
async def test_call_without_a_letta_agent_fails_with_the_reason(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """No letta_agent_id and no letta.default_agent_id: the agent joins, then the job ends
    failed with reason no_letta_agent_id."""
    await start_worker(entrypoint=VOICE_AGENT, no_human_timeout_s=30)
    await sink.wait_for(Ready, 45.0)
    d = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room="voice-no-agent", metadata=""))
    req = await sink.wait_for(JobRequest, 45.0, dispatch_id=d.id)
    await sink.wait_for(AgentJoined, 60.0, dispatch_id=d.id)
    ended = await sink.wait_for(JobEnded, 30.0, job_id=req.job_id)
    assert (ended.outcome, ended.reason) == ("failed", "no_letta_agent_id")
