"""`voiceops run --sandbox` runs the Letta stand-in as a supervised child named 'letta' on
letta.base_url: the proxy lists its sample agents and the default agent answers."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest
from livekit.agents import llm
from stack import Stack, stack_config

from voiceops.agent.letta_llm import LettaBrainOptions, LettaLLM
from voiceops.config import SANDBOX_LETTA_AGENT_ID
from voiceops.letta_standin.brain import CAPITAL_ANSWER
from voiceops.letta_standin.state import SAMPLE_AGENTS
from voiceops.testing.harness import free_port, wait_for

pytestmark = [pytest.mark.process]


class _SandboxLiveKit:
    """Where the supervisor's own emulator will listen (no LiveKit fixture in the sandbox)."""

    def __init__(self) -> None:
        self.url, self.api_key = f"ws://127.0.0.1:{free_port()}", "devkey"


def _letta_proc(stack: Stack) -> dict | None:
    procs = stack.sup.procs("letta")
    return procs[0] if procs and procs[0]["state"] == "ready" else None


async def test_sandbox_runs_the_letta_standin_and_the_proxy_lists_its_agents(
        tmp_path: Path) -> None:
    """1. The sandbox starts a 'letta' child; 2. GET /api/agents on the proxy lists the sample
    agents; 3. the default agent answers a brain turn at letta.base_url; 4. a killed 'letta'
    child is restarted; 5. nothing is left behind."""
    # No workers: this is about the Letta child and the proxy (d-voice's call test has workers).
    stack = Stack.start(tmp_path, stack_config(tmp_path, _SandboxLiveKit(), workers=0), None,
                        sandbox=True)
    try:
        first = wait_for(lambda: _letta_proc(stack), 30, "a ready 'letta' child")
        with urllib.request.urlopen(stack.proxy_url + "/api/agents", timeout=30) as resp:
            agents = json.loads(resp.read())["agents"]
        assert {(a["id"], a["name"]) for a in agents} == {s[:2] for s in SAMPLE_AGENTS}
        base_url = stack.sections["letta"]["base_url"]
        brain = LettaLLM(LettaBrainOptions(base_url=base_url), SANDBOX_LETTA_AGENT_ID)
        reply = ""
        ctx = llm.ChatContext.empty()
        ctx.add_message(role="user", content="what is the capital of france")
        async with brain.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                reply += chunk.delta.content if chunk.delta and chunk.delta.content else ""
        assert reply == CAPITAL_ANSWER
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: (p := _letta_proc(stack)) and p["pid"] != first["pid"], 30,
                 "the 'letta' child to be restarted")
    finally:
        stack.close()
