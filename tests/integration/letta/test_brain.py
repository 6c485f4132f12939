"""The Letta brain in text-mode AgentSessions, against the stand-in or a real Letta
(``LETTA_BASE_URL``): answers, streaming, first-sentence TTS start, separate conversations."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from letta_helpers import call, timed_chunks
from livekit import rtc
from livekit.agents import Agent, AgentSession, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice import io

from voiceops.agent.letta_llm import LETTA_TURN_HANDLING, BrainOutcome, LettaLLM
from voiceops.letta_standin.brain import CAPITAL_ANSWER, STORY_ANSWER

pytestmark = [pytest.mark.letta]


async def test_answers_the_fixed_question_and_echoes_in_one_conversation(letta_server: Any) -> None:
    """A call gets the capital answer, then an echo; both turns ok, in one Letta conversation."""
    async with call(letta_server) as c:
        assert await c.ask("What is the capital of France?") == CAPITAL_ANSWER
        assert await c.ask("hello robot") == "You said: hello robot."
        conversation = c.brain.conversation_id
    assert conversation and conversation.startswith("conv-")
    assert [e.kind for e in c.events] == [BrainOutcome.OK, BrainOutcome.OK]
    assert all(e.conversation and e.first_token_s is not None for e in c.events)
    assert c.events[0].reply_chars == len(CAPITAL_ANSWER) and c.events[0].chunks > 1


async def test_tokens_stream_in_order_and_the_first_arrives_before_the_reply_ends(
        letta_server: Any) -> None:
    """Chunks concatenate to the reply in order; the first comes while the rest is unwritten."""
    brain = LettaLLM(letta_server.brain_options(), letta_server.agent_id)
    chunks = await timed_chunks(brain, "please tell me a story")
    assert "".join(text for _, text in chunks) == STORY_ANSWER
    assert len(chunks) >= 10
    first_at, last_at = chunks[0][0], chunks[-1][0]
    # The stand-in and the stub LLM pace tokens (20-30 ms each): a buffered reply would
    # arrive in one burst at the end.
    assert last_at - first_at > 0.1, chunks


class RecordingTTS(tts.TTS):
    """A non-streaming TTS that notes when each sentence reaches it and returns 10 ms of silence."""

    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000,
                         num_channels=1)
        self.calls: list[tuple[float, str]] = []

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> Any:
        self.calls.append((time.perf_counter(), text))
        return _Silence(tts=self, input_text=text, conn_options=conn_options)


class _Silence(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(request_id="rec", sample_rate=16000, num_channels=1,
                                  mime_type="audio/pcm")
        output_emitter.push(bytes(320))
        output_emitter.flush()


class CapturedAudio(io.AudioOutput):
    """The session's audio sink: notes when the first agent audio frame arrives."""

    def __init__(self) -> None:
        super().__init__(label="captured", capabilities=io.AudioOutputCapabilities(pause=False))
        self.first_at: float | None = None
        self.frames = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.on_playback_started(created_at=time.time())
        self.frames += 1

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=0.01 * self.frames, interrupted=False)

    def clear_buffer(self) -> None:
        pass


async def test_agent_audio_starts_at_the_first_sentence_before_the_reply_is_complete(
        letta_server: Any) -> None:
    """AgentSession with a sentence-by-sentence TTS: the first sentence is synthesized and its
    audio reaches the sink before Letta has finished streaming the reply."""
    reply_done: list[float] = []
    brain = LettaLLM(letta_server.brain_options(), letta_server.agent_id,
                     on_event=lambda _: reply_done.append(time.perf_counter()))
    recorder, sink = RecordingTTS(), CapturedAudio()
    async with AgentSession(llm=brain, tts=recorder,
                            turn_handling=LETTA_TURN_HANDLING) as session:
        await session.start(Agent(instructions="(Letta keeps its own instructions)"))
        session.output.audio = sink
        await session.run(user_input="tell me a story")
    assert [text.strip() for _, text in recorder.calls] == [
        "Once upon a time there was a small robot.", "It liked to talk to people.",
        "Every night it told them a story.", "The end."]
    assert sink.first_at is not None and reply_done
    assert recorder.calls[0][0] < reply_done[0] and sink.first_at < reply_done[0]


async def test_two_concurrent_calls_on_one_agent_never_see_each_others_turns(
        letta_server: Any) -> None:
    """Two calls to the same agent at once: each conversation remembers only its own words."""
    async with call(letta_server) as a, call(letta_server) as b:
        said = await asyncio.gather(a.ask("apples are red"), b.ask("bananas are yellow"))
        assert said == ["You said: apples are red.", "You said: bananas are yellow."]
        before = await asyncio.gather(a.ask("what did i say before"),
                                      b.ask("what did i say before"))
        assert before == ["Before that you said: apples are red.",
                          "Before that you said: bananas are yellow."]
        assert a.brain.conversation_id != b.brain.conversation_id


async def test_without_conversations_calls_share_the_agents_thread(letta_server: Any) -> None:
    """conversations = false: both calls talk in the agent's one thread, so turns interleave
    (the README's warning); each turn still reports conversation=False."""
    agent = letta_server.agent_ids[1]
    async with call(letta_server, agent, use_conversations=False) as a, \
            call(letta_server, agent, use_conversations=False) as b:
        await a.ask("cherries are dark")
        await b.ask("lemons are sour")
        assert await a.ask("what did i say before") == "Before that you said: lemons are sour."
    assert a.brain.conversation_id is None
    assert not any(e.conversation for e in a.events + b.events)


async def test_an_unknown_agent_gets_the_apology_and_an_error_event(letta_server: Any) -> None:
    """A Letta agent id the server does not know: the caller hears the apology, event 'error'."""
    async with call(letta_server, "agent-00000000-0000-4000-8000-000000000000") as c:
        reply = await c.ask("hello")
    assert reply == c.brain.options.apology
    assert [(e.kind, e.detail) for e in c.events] == [(BrainOutcome.ERROR, "HTTP 404")]
