"""The Letta voice agent, the default ``workers.entrypoint``: VAD → STT → Letta → TTS.

One call per job process: join the room, pick the Letta agent (the dispatch's
``letta_agent_id``, else ``letta.default_agent_id``; neither is a named job failure), start
an ``AgentSession`` on the room, greet the caller once one is there, and end the job by the
shared stay-or-leave rule (:mod:`voiceops.agent.presence`). The caller may interrupt the agent
(barge-in); transcripts of both sides go to the room as LiveKit transcriptions, never to logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from livekit.agents import Agent, AgentSession, AutoSubscribe, JobContext, JobProcess, llm
from livekit.agents.voice import room_io

from voiceops import config
from voiceops.agent import providers
from voiceops.agent.basic import letta_agent_id
from voiceops.agent.letta_llm import (
    LETTA_TURN_HANDLING,
    LettaBrainOptions,
    LettaLLM,
    close_shared_clients,
)
from voiceops.agent.presence import humans_in, no_human_timeout_s, stay_while_attended
from voiceops.agent.telemetry import CallTelemetry
from voiceops.config import Config, ConfigError, Secrets, VoiceConfig
from voiceops.worker.entry import JobFailure

logger = logging.getLogger("voiceops.agent")

NO_AGENT_REASON: Final = "no_letta_agent_id"
CONFIG_REASON: Final = "config_error"
GREETING: Final = "Hello, how can I help you?"
PREWARMED_KEY: Final = "voiceops.prewarmed"
# Letta keeps each agent's history itself, so there is no preemptive generation
# (LETTA_TURN_HANDLING). Barge-in uses the VAD (the adaptive detector is a LiveKit Cloud model)
# and is final: with a non-streaming STT the transcript that would confirm it can come after
# livekit's false-interruption timeout, which would resume the agent over the caller.
TURN_HANDLING: Final[dict[str, Any]] = {
    **LETTA_TURN_HANDLING,
    "turn_detection": "vad",
    "interruption": {"enabled": True, "mode": "vad", "min_duration": 0.5,
                     "resume_false_interruption": False},
}


@dataclass(frozen=True)
class CallSettings:
    """What one call needs from the config and the secrets, read in the job process."""

    cfg: Config
    voice: VoiceConfig
    secrets: Secrets = field(repr=False)
    keys: providers.VoiceKeys = field(repr=False)

    @classmethod
    def load(cls, env: Mapping[str, str] = os.environ) -> CallSettings:
        cfg = config.load(config.resolve_path(None, env))
        voice = providers.voice_for(cfg, env)
        return cls(cfg, voice, config.load_secrets(cfg, env), providers.resolve_keys(voice, env))


def check_config(cfg: Config, env: Mapping[str, str]) -> None:
    """Worker start-up check (exit 78 naming the key): the providers and their keys."""
    providers.resolve_keys(providers.voice_for(cfg, env), env)


def prewarm(proc: JobProcess) -> None:
    """Job process start-up: load the VAD and the offline voice before any call."""
    cfg = config.load(config.resolve_path(None))
    proc.userdata[PREWARMED_KEY] = providers.prewarm_engines(providers.voice_for(cfg, os.environ))


def pick_agent_id(metadata: str, cfg: Config) -> str:
    """The dispatch's ``letta_agent_id``, else ``letta.default_agent_id``; "" for neither."""
    return letta_agent_id(metadata) or cfg.letta.default_agent_id


def build_brain(settings: CallSettings, agent_id: str, telemetry: CallTelemetry) -> llm.LLM[Any]:
    """The Letta brain: this process's shared client, one conversation for this call."""
    options = LettaBrainOptions.from_config(settings.cfg, settings.secrets)
    return LettaLLM(options, agent_id, on_event=telemetry.on_brain_event)


def build_session(settings: CallSettings, warm: providers.Prewarmed, brain: llm.LLM[Any]
                  ) -> AgentSession[None]:
    voice = settings.voice
    return AgentSession(
        vad=warm.vad,
        stt=providers.build_stt(voice, settings.keys, warm),
        llm=brain,
        tts=providers.build_tts(voice, settings.keys, warm),
        turn_handling=TURN_HANDLING,  # type: ignore[arg-type]
        user_away_timeout=None,
    )


# The caller's audio as the VAD and pocketsphinx use it (16 kHz: no resampling in either), in
# 20 ms frames: the end of speech is seen when the frame holding it is complete, so livekit's
# 50 ms frames made every reply wait 25 ms more on average (up to 50).
INPUT_SAMPLE_RATE_HZ: Final = 16000
INPUT_FRAME_MS: Final = 20


def room_options() -> room_io.RoomOptions:
    """Audio in and out; both sides' transcriptions published to the room, synced to speech.

    The session does not close when its linked caller leaves: the stay-or-leave rule decides.
    """
    return room_io.RoomOptions(
        audio_input=room_io.AudioInputOptions(sample_rate=INPUT_SAMPLE_RATE_HZ,
                                              frame_size_ms=INPUT_FRAME_MS),
        text_output=room_io.TextOutputOptions(sync_transcription=True),
        close_on_disconnect=False)


def _prewarmed(proc: JobProcess | None, voice: VoiceConfig) -> providers.Prewarmed:
    warm = proc.userdata.get(PREWARMED_KEY) if proc is not None else None
    return warm if isinstance(warm, providers.Prewarmed) else providers.prewarm_engines(voice)


async def greet_when_attended(ctx: JobContext, session: AgentSession[None]) -> None:
    """Say the greeting once a caller is in the room (not to an empty room)."""
    if not humans_in(ctx.room):
        await ctx.wait_for_participant()
    logger.info("greeting job_id=%s", ctx.job.id)
    session.say(GREETING, allow_interruptions=True)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel our own task and wait; a cancellation of the caller still propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:  # the greeting is a courtesy: its failure must not fail the call
        logger.exception("greeting_failed")


async def entrypoint(ctx: JobContext) -> None:
    """The default ``workers.entrypoint``: one voice call."""
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    try:
        settings = CallSettings.load()
    except ConfigError as exc:
        logger.error("voice_settings_invalid job_id=%s error=%s", ctx.job.id, exc)
        raise JobFailure(CONFIG_REASON) from None
    agent_id = pick_agent_id(ctx.job.metadata, settings.cfg)
    if not agent_id:
        raise JobFailure(NO_AGENT_REASON)
    telemetry = CallTelemetry(job_id=ctx.job.id)
    ctx.add_shutdown_callback(close_shared_clients)
    session = build_session(settings, _prewarmed(ctx.proc, settings.voice),
                            build_brain(settings, agent_id, telemetry))
    telemetry.attach(session)
    await session.start(Agent(instructions="Letta holds this agent's persona and memory."),
                        room=ctx.room, room_options=room_options(), record=False)
    logger.info("voice_call_started job_id=%s letta_agent_id=%s stt=%s tts=%s", ctx.job.id,
                agent_id, settings.voice.stt, settings.voice.tts)
    greeter = asyncio.create_task(greet_when_attended(ctx, session), name="greeting")
    try:
        reason = await stay_while_attended(ctx.room, no_human_timeout_s())
    finally:
        await _stop(greeter)
    await session.aclose()
    ctx.shutdown(reason=reason)
