"""Letta failures mid-call (stand-in fault knobs; skipped against a real Letta): the caller
hears the apology, the turn is reported with its kind, and the next turn answers again."""

from __future__ import annotations

import time
from typing import Any

import pytest
from letta_helpers import call

from voiceops.agent.letta_llm import BrainOutcome
from voiceops.letta_standin.brain import CAPITAL_ANSWER

pytestmark = [pytest.mark.letta, pytest.mark.faults]
QUESTION = "what is the capital of france"


@pytest.mark.parametrize(("fault", "kind", "detail", "spoken_before"), [
    ({"down_status": 503}, BrainOutcome.ERROR, "HTTP 503", ""),
    ({"error_after_tokens": 2}, BrainOutcome.ERROR, "error event llm_error", "The capital"),
    ({"drop_after_tokens": 3}, BrainOutcome.DROPPED, "RemoteProtocolError", "The capital of"),
    ({"first_token_delay_s": 5.0}, BrainOutcome.TIMEOUT, "no first token in time", ""),
])
async def test_a_letta_fault_is_apologised_for_and_the_call_goes_on(
        letta_server: Any, letta_faults: Any, fault: dict[str, Any], kind: BrainOutcome,
        detail: str, spoken_before: str) -> None:
    """Each fault: reply = what was already streamed + the apology; then, fault cleared, the
    same session gets a real answer."""
    async with call(letta_server, first_token_timeout_s=1.0) as c:
        assert await c.ask("hello robot") == "You said: hello robot."  # conversation exists
        letta_faults.set(**fault)
        started = time.perf_counter()
        reply = await c.ask(QUESTION)
        took = time.perf_counter() - started
        apology = c.brain.options.apology
        assert reply == (f"{spoken_before} {apology}" if spoken_before else apology)
        failed = c.events[-1]
        assert (failed.kind, failed.detail) == (kind, detail)
        assert failed.chunks == len(spoken_before.split())
        if kind is BrainOutcome.TIMEOUT:
            assert took < 4.0  # the apology comes at the bound, not when Letta finally answers
        letta_faults.clear()
        assert await c.ask(QUESTION) == CAPITAL_ANSWER
        assert c.events[-1].kind is BrainOutcome.OK


async def test_a_server_without_conversations_falls_back_to_the_agents_thread(
        letta_server: Any, letta_faults: Any) -> None:
    """POST /v1/conversations/ is a bare 404 (an older server): turns go to the agent's
    default thread and are answered; events say conversation=False."""
    letta_faults.set(conversations_status=404)
    async with call(letta_server) as c:
        assert await c.ask(QUESTION) == CAPITAL_ANSWER
        assert await c.ask(QUESTION) == CAPITAL_ANSWER
    assert c.brain.conversation_id is None
    assert [(e.kind, e.conversation) for e in c.events] == [(BrainOutcome.OK, False)] * 2


async def test_a_slow_stream_after_the_first_token_is_a_dropped_turn(
        letta_server: Any, letta_faults: Any) -> None:
    """A silence longer than stream_idle_timeout_s after tokens began counts as dropped."""
    async with call(letta_server, stream_idle_timeout_s=0.3) as c:
        letta_faults.set(token_delay_s=1.0)
        reply = await c.ask(QUESTION)
    assert reply.startswith("The ") and reply.endswith(c.brain.options.apology)
    assert c.events[-1].kind is BrainOutcome.DROPPED


async def test_a_busy_conversation_is_cancelled_and_the_turn_sent_again(
        letta_server: Any, letta_faults: Any) -> None:
    """409 'conversation busy' (an interrupted run still holds it, on a Letta with Redis): the
    brain cancels that run and sends the turn once more, so the caller gets the answer."""
    async with call(letta_server) as c:
        assert await c.ask("hello robot") == "You said: hello robot."
        letta_faults.set(conversation_busy=1)
        assert await c.ask(QUESTION) == CAPITAL_ANSWER
    assert c.events[-1].kind is BrainOutcome.OK
    state = letta_server.state()
    assert state["cancelled"] == {c.brain.conversation_id: 1}
