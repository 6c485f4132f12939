"""Session events → voiceops voice events: latencies and counts, never the words."""

from __future__ import annotations

import logging
import time

import pytest
from livekit import rtc
from livekit.agents import metrics
from livekit.agents.llm import ChatMessage
from livekit.agents.voice import events as ve

from voiceops import events
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
    """LLM ttft, TTS ttfb and the EOU transcription delay map to their metric names; -1 is dropped."""
    session, sent, _ = wired
    for m in (llm_metrics(0.25), llm_metrics(-1), llm_metrics(0.3, cancelled=True),
              tts_metrics(0.12), tts_metrics(-1), eou_metrics(0.6, 0.35), eou_metrics(0.0, 0.0)):
        session.emit("metrics_collected", ve.MetricsCollectedEvent(metrics=m))
    assert [(e.metric, e.value_s) for e in sent] == [  # type: ignore[attr-defined]
        ("llm_ttft", 0.25), ("tts_ttfb", 0.12), ("stt_delay", 0.35)]


def test_turns_replies_and_interruptions(wired: tuple, caplog: pytest.LogCaptureFixture) -> None:
    """A caller turn counts; a reply gives voice_response; an interrupted one counts; no words logged."""
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
    tel.apology("timeout")
    tel.apology("something-new")
    got = [(e.TYPE, getattr(e, "metric", getattr(e, "what", "")),
            getattr(e, "value_s", getattr(e, "reason", ""))) for e in sent]
    assert got == [("voice_count", "turn", ""), ("voice_metric", "voice_response", 0.9),
                   ("voice_count", "interruption", ""), ("voice_count", "apology", "timeout"),
                   ("voice_count", "apology", "error")]
    assert (tel.turns, tel.interruptions, tel.apologies) == (1, 1, 2)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "chars" in logged and SECRET_WORDS not in logged and "Paris" not in logged
