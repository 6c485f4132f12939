"""``LettaLLM``: a livekit-agents LLM whose every turn is a Letta agent's streamed reply.

Only the last user message goes to Letta (Letta keeps the history itself). Assistant tokens
are forwarded as ``ChatChunk`` s as they arrive, so AgentSession's TTS starts at the first
sentence. Each LettaLLM is one call: it opens one Letta conversation on its first turn, so
concurrent calls to one agent never interleave; a server without conversations gets the
agent's default thread instead. A failed turn never raises into the session: the caller hears
``options.apology`` and the call goes on; the turn is reported to ``on_event``.

Every ``chat()`` is a message Letta keeps, so an AgentSession using this LLM must not generate
preemptively (livekit-agents 1.8 does by default, on interim transcripts, and may retry):
pass ``turn_handling=LETTA_TURN_HANDLING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Never

import letta_client
from letta_client import AsyncLetta
from livekit.agents import llm
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.voice.turn import TurnHandlingOptions

from voiceops.agent.letta.client import shared_client
from voiceops.agent.letta.events import BrainEvent, BrainOutcome
from voiceops.agent.letta.options import LettaBrainOptions
from voiceops.agent.letta.turn import TurnFailed, TurnStats, describe, read_turn

logger = logging.getLogger("voiceops.agent.letta")
# AgentSession(turn_handling=...) for a Letta brain: no preemptive generation, whose
# speculative turns Letta would store as real ones.
LETTA_TURN_HANDLING: Final[TurnHandlingOptions] = {"preemptive_generation": {"enabled": False}}


def no_conversations(exc: letta_client.APIStatusError) -> bool:
    """A server without the conversations route (FastAPI's bare 404), not an unknown agent."""
    if exc.status_code in (405, 501):
        return True
    body = exc.body if isinstance(exc.body, dict) else {}
    return exc.status_code == 404 and body.get("detail") == "Not Found"


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""


class LettaLLM(llm.LLM[Never]):
    """The brain of one call: a Letta agent, streamed, in its own conversation."""

    def __init__(self, options: LettaBrainOptions, agent_id: str, *,
                 client: AsyncLetta | None = None,
                 on_event: Callable[[BrainEvent], None] | None = None) -> None:
        super().__init__()
        if not agent_id:
            raise ValueError("LettaLLM needs a Letta agent id")
        self.options = options
        self.agent_id = agent_id
        self._client = client
        self._on_event = on_event
        self._use_conversations = options.use_conversations
        self._conversation_id: str | None = None
        self._thread_lock = asyncio.Lock()

    @property
    def model(self) -> str:
        return self.agent_id

    @property
    def provider(self) -> str:
        return "letta"

    @property
    def conversation_id(self) -> str | None:
        """This call's Letta conversation (None before the first turn, or without them)."""
        return self._conversation_id

    @property
    def client(self) -> AsyncLetta:
        if self._client is None:
            self._client = shared_client(self.options.base_url, self.options.api_key)
        return self._client

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[llm.Tool] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
             tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
             extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> LettaStream:
        # Letta agents have their own tools; LiveKit's tools and tool_choice do not apply.
        return LettaStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    async def _thread(self) -> str | None:
        """The conversation for this call, created once; None means the agent's default thread."""
        async with self._thread_lock:
            if self._conversation_id is None and self._use_conversations:
                try:
                    conv = await self.client.conversations.create(agent_id=self.agent_id)
                except letta_client.APIStatusError as exc:
                    if not no_conversations(exc):
                        raise
                    self._use_conversations = False
                    # turns use the agent's default thread: concurrent calls may interleave
                    logger.warning("letta_no_conversations agent=%s status=%d thread=default",
                                   self.agent_id, exc.status_code)
                else:
                    self._conversation_id = conv.id
            return self._conversation_id

    async def open_stream(self, text: str) -> Any:
        conversation = await self._thread()
        try:
            return await self._send(conversation, text)
        except letta_client.ConflictError:
            if conversation is None:
                raise
            # 409: an earlier turn's run still holds the conversation (a Letta with Redis locks
            # each conversation; a barge-in may leave the interrupted run going). The caller
            # has moved on: cancel it and send once more.
            logger.info("letta_conversation_busy agent=%s action=cancel_runs", self.agent_id)
            with contextlib.suppress(letta_client.APIStatusError):  # e.g. 409: nothing to cancel
                await self.client.conversations.cancel(conversation)
            return await self._send(conversation, text)

    async def _send(self, conversation: str | None, text: str) -> Any:
        kwargs: dict[str, Any] = {"input": text, "streaming": True, "stream_tokens": True,
                                  "include_pings": True}
        if conversation is not None:
            return await self.client.conversations.messages.create(conversation, **kwargs)
        return await self.client.agents.messages.create(self.agent_id, **kwargs)

    def report(self, event: BrainEvent) -> None:
        level = logging.INFO if event.kind is BrainOutcome.OK else logging.WARNING
        logger.log(level, "letta_turn outcome=%s agent=%s first_token_s=%s duration_s=%.3f "
                   "chunks=%d detail=%s", event.kind, self.agent_id,
                   "-" if event.first_token_s is None else f"{event.first_token_s:.3f}",
                   event.duration_s, event.chunks, event.detail or "-")
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a reporting bug must not cost the caller the answer
                logger.exception("letta_on_event_failed agent=%s", self.agent_id)


class LettaStream(llm.LLMStream):
    """One turn: the reply as ChatChunks, or an apology after a Letta failure."""

    def __init__(self, brain: LettaLLM, **kwargs: Any) -> None:
        super().__init__(brain, **kwargs)
        self._brain = brain
        self._request_id = f"letta-{uuid.uuid4().hex[:12]}"

    def _send(self, text: str) -> None:
        self._event_ch.send_nowait(llm.ChatChunk(
            id=self._request_id, delta=llm.ChoiceDelta(role="assistant", content=text)))

    async def _run(self) -> None:
        text = last_user_text(self._chat_ctx)
        if not text.strip():
            return  # nothing to answer (a greeting is the pipeline's session.say)
        brain, opts = self._brain, self._brain.options
        stats = TurnStats(started=time.perf_counter())
        kind, detail = BrainOutcome.OK, ""
        try:
            await read_turn(lambda: brain.open_stream(text), self._send, stats,
                            first_token_timeout_s=opts.first_token_timeout_s,
                            idle_timeout_s=opts.stream_idle_timeout_s)
        except TurnFailed as exc:
            kind, detail = exc.kind, exc.detail
        except (letta_client.APIError, OSError) as exc:  # conversation create failed
            kind, detail = BrainOutcome.ERROR, describe(exc)
        if kind is not BrainOutcome.OK:
            self._send((" " if stats.chunks else "") + opts.apology)
        brain.report(BrainEvent(
            kind=kind, letta_agent_id=brain.agent_id,
            duration_s=time.perf_counter() - stats.started, first_token_s=stats.first_token_s,
            chunks=stats.chunks, reply_chars=stats.reply_chars,
            conversation=brain.conversation_id is not None, detail=detail))
