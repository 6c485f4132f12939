"""Session events → voiceops voice events: latencies and counts, never the words."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from livekit import rtc
from livekit.agents import metrics
from livekit.agents.llm import ChatMessage
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice import events as ve

from voiceops import events
from voiceops.agent.letta_llm import BrainEvent, BrainOutcome
from voiceops.agent.telemetry import CallTelemetry

SECRET_WORDS = "my card number is four two"


def llm_metrics(ttft: float, cancelled: bool = False) -> metrics.LLMMetrics:
    return metrics.LLMMetrics(label="l", request_id="r", timestamp=0, duration=1, ttft=ttft,
                              cancelled=cancelled, completion_tokens=1, prompt_tokens=1,
                              prompt_cached_tokens=0, total_tokens=2, tokens_per_second=1)


def tts_metrics(ttfb: float, audio_s: float = 1.0) -> metrics.TTSMetrics:
    return metrics.TTSMetrics(label="t", request_id="r", timestamp=0, ttfb=ttfb, duration=1,
                              audio_duration=audio_s, cancelled=False, characters_count=3,
                              streamed=False)


def eou_metrics(eou_s: float, stt_s: float) -> metrics.EOUMetrics:
    return metrics.EOUMetrics(timestamp=0, end_of_utterance_delay=eou_s,
                              transcription_delay=stt_s, on_user_turn_completed_delay=0)


@pytest.fixture
def wired() -> tuple[rtc.EventEmitter, list[events.Event], CallTelemetry]:
    session: rtc.EventEmitter = rtc.EventEmitter()
    sent: list[events.Event] = []
    tel = CallTelemetry(job_id="AJ_1", emit=lambda e: sent.append(e) or True)
    tel.attach(session)  # type: ignore[arg-type]
    return session, sent, tel


def test_metrics_become_voice_metric_events(wired: tuple) -> None:
    """LLM ttft, TTS ttfb and the EOU transcription delay map to their metric names; -1 is
    dropped."""
    session, sent, _ = wired
    for m in (llm_metrics(0.25), llm_metrics(-1), llm_metrics(0.3, cancelled=True),
              tts_metrics(0.12), tts_metrics(-1), eou_metrics(0.6, 0.35), eou_metrics(0.0, 0.0)):
        session.emit("metrics_collected", ve.MetricsCollectedEvent(metrics=m))
    assert [(e.metric, e.value_s) for e in sent] == [  # type: ignore[attr-defined]
        ("llm_ttft", 0.25), ("tts_ttfb", 0.12), ("stt_delay", 0.35)]


def test_turns_replies_and_interruptions(wired: tuple, caplog: pytest.LogCaptureFixture) -> None:
    """A caller turn counts; a reply gives voice_response; talking over the agent counts as an
    interruption (talking while it listens does not); no words are logged."""
    session, sent, tel = wired
    caplog.set_level(logging.INFO, logger="voiceops.agent.voice")
    user = ChatMessage(role="user", content=[SECRET_WORDS])
    reply = ChatMessage(role="assistant", content=["The capital of France is Paris."],
                        metrics={"e2e_latency": 0.9})
    cut = ChatMessage(role="assistant", content=["Once upon a time"], interrupted=True)
    session.emit("user_input_transcribed",
                 ve.UserInputTranscribedEvent(transcript=SECRET_WORDS, is_final=True))
    for item in (user, reply, cut):
        session.emit("conversation_item_added", ve.ConversationItemAddedEvent(item=item))
    # The caller talks while the agent listens (a turn), then over the agent (a barge-in).
    for agent_state, user_state in (("listening", "speaking"), ("listening", "listening"),
                                    ("speaking", "speaking")):
        session.emit("agent_state_changed", ve.AgentStateChangedEvent(
            old_state="idle", new_state=agent_state))
        session.emit("user_state_changed", ve.UserStateChangedEvent(
            old_state="listening", new_state=user_state))
    got = [(e.TYPE, getattr(e, "metric", getattr(e, "what", "")), getattr(e, "value_s", None))
           for e in sent]
    # the interruption counts once: the barge-in, not the flagged message
    assert got == [("voice_count", "turn", None), ("voice_metric", "voice_response", 0.9),
                   ("voice_count", "interruption", None)]
    assert (tel.turns, tel.interruptions) == (1, 1)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "chars" in logged and SECRET_WORDS not in logged and "Paris" not in logged
    style = re.compile(r"^[a-z_]+( [a-z_]+=\S+)*$")  # the log style: event name, key=value
    assert [r.getMessage() for r in caplog.records if not style.match(r.getMessage())] == []
    assert "caller_turn job_id=" in logged and "agent_reply job_id=" in logged


def test_a_failed_letta_turn_becomes_letta_error(wired: tuple) -> None:
    """The brain's failed turn (the caller heard the apology) is a letta_error event; an ok one is
    not."""
    _, sent, tel = wired
    tel.on_brain_event(BrainEvent(kind=BrainOutcome.OK, letta_agent_id="agent-1", duration_s=0.4))
    tel.on_brain_event(BrainEvent(kind=BrainOutcome.TIMEOUT, letta_agent_id="agent-1",
                                  duration_s=8.0, detail="no first token"))
    assert [(e.TYPE, e.kind) for e in sent] == [("letta_error", "timeout")]  # type: ignore[attr-defined]


async def test_an_interrupted_speech_counts_once_when_the_caller_spoke_during_it(
        wired: tuple) -> None:
    """A barge-in seen only as the agent's speech ending interrupted (the caller began between
    two sentences) counts once; a speech ended with no caller speaking (a hang-up) does not."""
    session, sent, tel = wired

    async def speech(*, caller_speaks: bool) -> None:
        handle = SpeechHandle.create()
        session.emit("speech_created", ve.SpeechCreatedEvent(
            user_initiated=False, source="generate_reply", speech_handle=handle))
        session.emit("agent_state_changed", ve.AgentStateChangedEvent(
            old_state="speaking", new_state="thinking"))
        if caller_speaks:
            session.emit("user_state_changed", ve.UserStateChangedEvent(
                old_state="listening", new_state="speaking"))
        finished = asyncio.Event()  # set after the handle's own done callbacks (ours) ran
        handle._done_fut.add_done_callback(lambda _: finished.set())
        handle._cancel()  # what an interruption does
        handle._mark_done()
        await finished.wait()

    await speech(caller_speaks=True)
    await speech(caller_speaks=False)
    assert [getattr(e, "what", "") for e in sent] == ["interruption"]
    assert tel.interruptions == 1
