"""A real call under the real supervisor: a caller on the rtc SDK talks to the Letta voice agent.

The caller joins with a token from the proxy, the proxy dispatches the agent, the caller says
a question (piper), and what the caller hears back is transcribed (pocketsphinx): it must hold
the Letta agent's answer. Then the caller cuts into a long answer and the agent stops talking.
LiveKit is the ``livekit_server`` fixture (the emulator, or LIVEKIT_URL); Letta is the
``letta_server`` fixture (the stand-in, or LETTA_BASE_URL).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, stack_config

from voiceops.agent import offline
from voiceops.agent.pipeline import GREETING
from voiceops.config import LettaConfig
from voiceops.letta_standin.brain import CAPITAL_ANSWER, STORY_ANSWER, normalize
from voiceops.testing.caller import Caller, closest_reply, render_speech, transcribe
from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.livekit, pytest.mark.letta]

QUESTION = "What is the capital of France?"
APOLOGY = LettaConfig().apology
STORY_REQUEST = "Please tell me a story."
BARGE_IN = "Stop please and tell me what is the capital of France instead."
JOIN_S = 60.0
REPLY_S = 45.0


@pytest.fixture(scope="module")
def engines() -> tuple[offline.PiperEngine, offline.SphinxEngine]:
    """The caller's mouth and ears: piper and pocketsphinx, loaded once."""
    return offline.load_piper(), offline.load_sphinx()


@pytest.fixture(scope="module")
def call_stack(livekit_server_module: Any, letta_server: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One supervisor with one voice worker on offline speech, its Letta at ``letta_server``."""
    tmp = tmp_path_factory.mktemp("call")
    sections = stack_config(tmp, livekit_server_module, workers=1,
                            letta__base_url=letta_server.base_url, heartbeat__enabled=False)
    env = {"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "30"}
    if letta_server.api_key:
        env["LETTA_API_KEY"] = letta_server.api_key
    stack = Stack.start(tmp, sections, livekit_server_module, env=env)
    try:
        yield stack
    finally:
        stack.close()


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def metric(stack: Stack, name: str) -> float:
    """A sample's value summed over its series on the supervisor's /metrics."""
    url = f"http://{stack.sections['metrics']['listen']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


@pytest.fixture
async def caller(call_stack: Stack, letta_server: Any, tmp_path: Path) -> AsyncIterator[Caller]:
    """A caller in room ``call-…`` with the agent dispatched to it, past its greeting."""
    room = f"call-{tmp_path.name[-12:]}"
    grant = post(call_stack.proxy_url + "/api/token", {"room": room, "identity": "caller-1"})
    person = await Caller.start()
    try:
        await person.call("connect", grant["url"], grant["token"], expect="connected",
                          timeout_s=JOIN_S)
        body = post(call_stack.proxy_url + "/api/dispatch-agent",
                    {"room": room, "agent_id": letta_server.agent_id})
        assert body["success"], body
        await person.expect("agent_track", timeout_s=JOIN_S)
        await person.call("wait_speech", str(JOIN_S), expect="agent_speech", timeout_s=JOIN_S + 5)
        await person.call("wait_quiet", "1.0", str(REPLY_S), expect="agent_quiet",
                          timeout_s=REPLY_S + 5)  # the greeting is over
        yield person
    finally:
        await person.close()


async def test_the_agent_answers_a_spoken_question(
        call_stack: Stack, caller: Caller, engines: Any, tmp_path: Path) -> None:
    """The caller asks; what it hears back, transcribed, is Letta's answer; the supervisor
    records a voice response time."""
    piper, sphinx = engines
    before = metric(call_stack, "voiceops_voice_response_seconds_count")
    said = render_speech(piper, QUESTION, tmp_path / "question.pcm")
    spoke = await caller.call("speak", str(said), expect="spoke", timeout_s=30)
    await caller.call("wait_speech", str(REPLY_S), expect="agent_speech", timeout_s=REPLY_S + 5)
    await caller.call(
        "wait_quiet", "1.5", str(REPLY_S), expect="agent_quiet", timeout_s=REPLY_S + 5
    )
    heard = tmp_path / "answer.pcm"
    await caller.call(
        "dump", str(heard), str(spoke["speech_end_ts"]), expect="dumped", timeout_s=10
    )
    # what an echo of the question would sound like is among them: it must lose
    candidates = [CAPITAL_ANSWER, f"You said: {normalize(QUESTION)}.", GREETING, STORY_ANSWER,
                  APOLOGY]
    assert closest_reply(heard, candidates) == CAPITAL_ANSWER, transcribe(sphinx, heard)
    wait_for(lambda: metric(call_stack, "voiceops_voice_response_seconds_count") > before, 15,
             "a voice_response sample on /metrics")
    assert metric(call_stack, "voiceops_voice_turns_total") >= 1


async def test_the_caller_interrupts_a_long_answer(
        call_stack: Stack, caller: Caller, engines: Any, tmp_path: Path) -> None:
    """Barge-in: the caller talks over a long answer; the agent falls silent well before the
    answer's end (it would have talked on), and the interruption is counted."""
    piper, _ = engines
    before = metric(call_stack, "voiceops_voice_interruptions_total")
    ask = render_speech(piper, STORY_REQUEST, tmp_path / "story.pcm")
    cut = render_speech(piper, BARGE_IN, tmp_path / "barge.pcm")
    story_s = len(render_speech(piper, STORY_ANSWER, tmp_path / "answer.pcm").read_bytes()) / 96000
    await caller.call("speak", str(ask), expect="spoke", timeout_s=30)
    await caller.send("barge", str(cut), "1.5", str(REPLY_S))
    barging = await caller.expect("barging", timeout_s=REPLY_S + 10)
    spoke = await caller.expect("spoke", timeout_s=30)
    talking = await caller.call("level", str(barging["agent_speech_ts"]),
                                str(spoke["speech_start_ts"]), expect="level", timeout_s=10)
    assert talking["rms"] > 1000, talking  # the story was playing when the caller cut in
    quiet = await caller.call("went_quiet", str(spoke["speech_start_ts"]), "0.5", str(REPLY_S),
                              expect="went_quiet", timeout_s=REPLY_S + 5)
    played_s = quiet["ts"] - barging["agent_speech_ts"]
    assert played_s < story_s - 1.0, (played_s, story_s)  # cut short, not played to the end
    wait_for(lambda: metric(call_stack, "voiceops_voice_interruptions_total") > before, 20,
             "the interruption counted on /metrics")


async def test_the_job_ends_when_the_caller_hangs_up(call_stack: Stack, caller: Caller) -> None:
    """The last caller leaving ends the agent's job on its own (outcome success, no job left)."""
    ended = 'voiceops_jobs_total{agent_name="e2e-agent",outcome="success"}'
    wait_for(lambda: metric(call_stack, "voiceops_jobs_active") == 1, 30,
             "only this call's job running (earlier calls ended)")
    before = metric(call_stack, ended)
    await caller.close()
    wait_for(lambda: metric(call_stack, ended) > before, 30, "the job to end after the hang-up")
    wait_for(lambda: metric(call_stack, "voiceops_jobs_active") == 0, 30, "no active job left")
