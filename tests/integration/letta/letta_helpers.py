"""Text-mode calls on the Letta brain: an AgentSession per call, as the voice pipeline has."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import Agent, AgentSession, llm

from voiceops.agent.letta_llm import LETTA_TURN_HANDLING, BrainEvent, LettaLLM


@dataclass
class Call:
    """One caller's session and the brain's reports for it."""

    session: AgentSession
    brain: LettaLLM
    events: list[BrainEvent] = field(default_factory=list)

    async def ask(self, text: str) -> str:
        """One turn through AgentSession; the assistant's whole reply."""
        result = await self.session.run(user_input=text)
        message = result.expect.next_event().is_message(role="assistant").event().item
        return str(message.text_content)


@asynccontextmanager
async def call(server: Any, agent_id: str | None = None, **options: Any) -> AsyncIterator[Call]:
    events: list[BrainEvent] = []
    brain = LettaLLM(server.brain_options(**options), agent_id or server.agent_id,
                     on_event=events.append)
    async with AgentSession(llm=brain, turn_handling=LETTA_TURN_HANDLING) as session:
        await session.start(Agent(instructions="(Letta keeps its own instructions)"))
        yield Call(session, brain, events)


async def timed_chunks(brain: LettaLLM, text: str) -> list[tuple[float, str]]:
    """Stream one turn straight from the LLM: (seconds since the request, text) per chunk."""
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content=text)
    started, out = time.perf_counter(), []
    async with brain.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                out.append((time.perf_counter() - started, chunk.delta.content))
    return out
