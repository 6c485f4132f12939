"""One call's voice telemetry: livekit-agents session events → voiceops events.

Only numbers leave the job process: latencies, counts, and the lengths of what was said.
Transcripts are callers' words (personal data): they go to the room (for the caller's own
client) and nowhere else — never into an event or a log line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, metrics
from livekit.agents.llm import ChatMessage
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice import events as voice_events

from voiceops import events
from voiceops.agent.letta_llm import BrainEvent, to_voiceops_event

logger = logging.getLogger("voiceops.agent.voice")

Emit = Callable[[events.Event], bool]


def _seconds(value: float | None) -> float | None:
    """A latency worth recording: finite and non-negative (livekit uses -1 for "none")."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def samples_from_metrics(m: Any) -> list[tuple[str, float]]:
    """The voiceops latency samples in one livekit-agents metrics object."""
    out: list[tuple[str, float]] = []
    if isinstance(m, metrics.LLMMetrics) and not m.cancelled:
        value = _seconds(m.ttft)
        if value is not None:
            out.append(("llm_ttft", value))
    elif isinstance(m, metrics.TTSMetrics):
        value = _seconds(m.ttfb)
        if value is not None and m.audio_duration > 0:
            out.append(("tts_ttfb", value))
    elif isinstance(m, metrics.EOUMetrics) and m.end_of_utterance_delay > 0:
        value = _seconds(m.transcription_delay)
        if value is not None:
            out.append(("stt_delay", value))
    return out


def response_latency(item: Any) -> float | None:
    """Caller stopped speaking → first agent audio, from an assistant message's metrics."""
    if not isinstance(item, ChatMessage) or item.role != "assistant":
        return None
    return _seconds((item.metrics or {}).get("e2e_latency"))


class CallTelemetry:
    """Subscribes to one AgentSession and emits ``voice_metric`` / ``voice_count`` events."""

    def __init__(self, *, job_id: str, emit: Emit = events.emit) -> None:
        self._job_id = job_id
        self._emit = emit
        self.turns = 0
        self.interruptions = 0
        self._agent_state = "initializing"
        self._speech: SpeechHandle | None = None  # the agent's current speech
        self._counted: set[str] = set()  # ids of speeches already counted as interrupted
        self._caller_starts = 0  # how often the caller started speaking, for handles to compare

    def attach(self, session: AgentSession[Any]) -> None:
        # The per-component metrics (STT, LLM ttft, TTS ttfb, end of utterance) still come only
        # with metrics_collected; AgentSession.on() warns that it is deprecated on every call,
        # so subscribe through the plain emitter.
        rtc.EventEmitter[voice_events.EventTypes].on(session, "metrics_collected", self._on_metrics)
        session.on("conversation_item_added", self._on_item)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_state)
        session.on("agent_false_interruption", self._on_false_interruption)
        session.on("speech_created", self._on_speech)
        session.on("error", self._on_error)

    def _on_state(self, ev: voice_events.AgentStateChangedEvent) -> None:
        self._agent_state = ev.new_state
        logger.debug("agent_state job_id=%s state=%s", self._job_id, ev.new_state)

    def _on_false_interruption(self, ev: voice_events.AgentFalseInterruptionEvent) -> None:
        logger.info("false_interruption job_id=%s resumed=%s", self._job_id, ev.resumed)

    def _on_error(self, ev: voice_events.ErrorEvent) -> None:
        logger.warning("voice_pipeline_error job_id=%s error=%s source=%s", self._job_id,
                       type(ev.error).__name__, type(ev.source).__name__)

    def _metric(self, name: str, value_s: float) -> None:
        self._emit(events.VoiceMetric(metric=name, value_s=value_s))

    def _count(self, what: str) -> None:
        self._emit(events.VoiceCount(what=what))

    def _on_metrics(self, ev: voice_events.MetricsCollectedEvent) -> None:
        for name, value in samples_from_metrics(ev.metrics):
            self._metric(name, value)

    def _on_item(self, ev: voice_events.ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, ChatMessage):
            return
        if item.role == "user":
            self.turns += 1
            self._count("turn")
            return
        if item.role != "assistant":
            return
        latency = response_latency(item)
        if latency is not None:
            self._metric("voice_response", latency)
        logger.info("agent_reply job_id=%s chars=%d interrupted=%s response_s=%s", self._job_id,
                    len(item.text_content or ""), item.interrupted,
                    "-" if latency is None else f"{latency:.3f}")

    def _on_user_state(self, ev: voice_events.UserStateChangedEvent) -> None:
        # A barge-in: the caller starts talking over the agent (which then stops). Counted at
        # the caller's start of speech, before livekit pauses the agent; the reply message's
        # own `interrupted` flag is not reliable (a reply cut early may be stored unflagged).
        if ev.new_state != "speaking":
            return
        self._caller_starts += 1
        if self._agent_state == "speaking":
            self._count_interruption(self._speech)

    def _on_speech(self, ev: voice_events.SpeechCreatedEvent) -> None:
        # The other way to see a barge-in: the speech ends interrupted after the caller began
        # to talk during it (the caller may start between two sentences, in "thinking").
        handle, starts = ev.speech_handle, self._caller_starts
        self._speech = handle

        def done(h: SpeechHandle) -> None:
            if h.interrupted and self._caller_starts > starts:
                self._count_interruption(h)
        handle.add_done_callback(done)

    def _count_interruption(self, handle: SpeechHandle | None) -> None:
        """Once per agent speech, whichever of the two signs comes first."""
        if handle is not None:
            if handle.id in self._counted:
                return
            if len(self._counted) > 1000:  # a long call: ids of old speeches are not needed
                self._counted.clear()
            self._counted.add(handle.id)
        self.interruptions += 1
        self._count("interruption")

    def _on_transcribed(self, ev: voice_events.UserInputTranscribedEvent) -> None:
        if ev.is_final:  # the length only: the words are the caller's
            logger.info("caller_turn job_id=%s chars=%d", self._job_id, len(ev.transcript))

    def on_brain_event(self, event: BrainEvent) -> None:
        """A Letta turn: a failed one (the caller heard the apology) becomes ``letta_error``."""
        failure = to_voiceops_event(event)
        if failure is not None:
            self._emit(failure)
