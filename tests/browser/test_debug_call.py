"""The debug page in a real Chromium against `voiceops run --sandbox`: call the agent, and see
why it did not come. The fake microphone asks the sandbox's Letta stand-in a question."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_support import (
    DEADLINE_S,
    SandboxLiveKit,
    shoot,
    snapshot,
    start_sandbox,
    text_of,
    wait_state,
)
from stack import Stack

from voiceops.testing.chromium import Chromium, Page
from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.browser]
STEPS = ("token", "connected", "dispatched", "job_request", "agent_joined", "first_audio")
AUDIBLE_DB = -40.0  # the agent's speech, measured by the page on the remote track


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, SandboxLiveKit]]:
    stack, lk = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        yield stack, lk
    finally:
        stack.close()


def open_page(chromium: Chromium, stack: Stack) -> Page:
    page = chromium.new_page()
    page.goto(stack.proxy_url + "/debug")
    wait_for(lambda: page.evaluate("document.getElementById('agent').options.length") > 1, 30,
             "the Letta agents to be listed")
    return page


def said(page: Page, who: str, *words: str) -> dict[str, Any] | None:
    """The first transcript of ``who`` containing every word, if any."""
    for t in snapshot(page)["transcripts"]:
        if t["who"] == who and all(w in t["text"].lower() for w in words):
            return dict(t)
    return None


def connect_by_keyboard(chromium: Chromium, page: Page, shot: str = "") -> None:
    """Enter on the Connect button; with ``shot``, photograph the page while it connects (its
    token request held back meanwhile)."""
    if shot:
        page.send("Fetch.enable", patterns=[{"urlPattern": "*/api/token",
                                             "requestStage": "Request"}])
    page.focus("#connect")
    page.press("Enter")
    if shot:
        paused = chromium.wait_event("Fetch.requestPaused")
        assert snapshot(page)["state"] == "connecting"
        shoot(page, shot)
        page.send("Fetch.continueRequest", requestId=paused["params"]["requestId"])
        page.send("Fetch.disable")


def test_call_reaches_the_agent(sandbox: tuple[Stack, SandboxLiveKit],
                                browser: Callable[[], Chromium]) -> None:
    """Connect by keyboard: token, LiveKit, dispatch, JobRequest and the agent's join fill the
    timeline in order; the agent's audio track is played and its packets arrive; Escape hangs up."""
    stack, _ = sandbox
    chromium = browser()
    page = open_page(chromium, stack)
    connect_by_keyboard(chromium, page, shot="connecting")
    state = wait_state(page, "talking", 60)
    assert page.evaluate("document.activeElement.id") == "hangup"
    state = wait_for(lambda: (s := snapshot(page))["agentRtp"] and "job_request" in s["steps"]
                     and s, 30, "the agent's audio packets and the JobRequest time")
    steps = state["steps"]
    assert steps["token"] <= steps["connected"] <= steps["dispatched"] <= steps["job_request"]
    assert steps["dispatched"] < steps["agent_joined"] < 60_000, steps
    assert state["audioElements"] >= 1 and state["agentRtp"]["packets"] > 0, state
    assert "in the room" in text_of(page, "agent-presence")
    assert state["csp"] == [] and state["errors"] == [], state
    shoot(page, "talking")

    page.press("Escape")  # hang up from anywhere on the page
    wait_state(page, "idle", 10)
    assert page.evaluate("document.activeElement.id") == "connect"


def test_talk_to_the_agent(sandbox: tuple[Stack, SandboxLiveKit],
                           browser: Callable[[], Chromium]) -> None:
    """The agent hears the question from the fake microphone and answers aloud: the page shows
    both transcripts, measures the agent's audio on the remote track, and times the turn."""
    stack, _ = sandbox
    chromium = browser()
    page = open_page(chromium, stack)
    connect_by_keyboard(chromium, page)
    wait_state(page, "talking", 60)
    wait_for(lambda: said(page, "user", "capital", "france"), 90,
             "the agent's transcript of the question")
    wait_for(lambda: said(page, "agent", "paris"), 60, "the agent's answer")
    state = wait_for(lambda: (s := snapshot(page))["turns"] and
                     s["peak"]["agent"] > AUDIBLE_DB and s, 30,
                     "a measured turn and audible agent audio")
    steps = state["steps"]
    assert all(name in steps for name in STEPS), steps
    assert steps["agent_joined"] < steps["first_audio"], steps
    assert all(0 < ms < 30_000 for ms in state["turns"]), state["turns"]
    conversation = text_of(page, "transcript").lower()
    assert "paris" in conversation and "france" in conversation
    assert text_of(page, "turns").strip(), "voice response times listed"
    assert state["csp"] == [] and state["errors"] == [], state
    shoot(page, "conversation")


def test_missing_agent_shows_the_diagnosis(sandbox: tuple[Stack, SandboxLiveKit],
                                           browser: Callable[[], Chromium]) -> None:
    """With JobRequests swallowed, the page waits, then shows voiceops' diagnosis within the
    monitor's deadline (plus its ListDispatch confirmation and one poll)."""
    stack, lk = sandbox
    chromium = browser()
    page = open_page(chromium, stack)
    lk.faults({"swallow_job_requests": True})
    try:
        page.evaluate("document.getElementById('connect').click()")
        wait_state(page, "waiting", 30)
        shoot(page, "waiting")
        state = wait_state(page, "missing", DEADLINE_S + 15)
        steps = state["steps"]
        assert steps["diagnosed"] - steps["dispatched"] <= DEADLINE_S * 1000 + 3000, steps
        assert "no JobRequest within" in state["diagnosis"]
        assert "LiveKit sent no JobRequest" in state["diagnosis"], state["diagnosis"]
        assert state["diagnosis"] in text_of(page, "explain")
        assert "job_request" not in steps and "agent_joined" not in steps
        assert state["csp"] == [], state["csp"]
        shoot(page, "missing")
    finally:
        lk.faults(None)


def test_turn_timer_measures_stop_to_agent_audio(sandbox: tuple[Stack, SandboxLiveKit],
                                                 browser: Callable[[], Chromium]) -> None:
    """The page's turn timer, run in the browser on level traces: the response time is from
    the user's last loud sample to the agent's first; a cough is not a turn."""
    stack, _ = sandbox
    page = browser().new_page()
    page.goto(stack.proxy_url + "/debug")
    events = page.evaluate("""import('/debug/static/debug-audio.js').then(({TurnTimer}) => {
        const timer = new TurnTimer(), out = [];
        const trace = (ms) => [ms >= 200 && ms <= 1200 ? -20 : -90,    // the user speaks
                               ms >= 2000 && ms <= 3000 ? -25 : -100]; // then the agent
        for (let ms = 0; ms <= 6000; ms += 50) {
          const [mic, agent] = ms >= 4000 && ms <= 4100 ? [-20, -100] : trace(ms);  // a cough
          out.push(...timer.feed(ms, mic, agent));
        }
        return out;
    })""")
    assert [e["type"] for e in events] == ["user_stopped", "agent_started", "first_agent_audio",
                                           "turn"]
    assert events[-1]["responseMs"] == 2000 - 1200


def test_transcript_streams_become_one_bubble_per_segment(
        sandbox: tuple[Stack, SandboxLiveKit], browser: Callable[[], Chromium]) -> None:
    """The page's reader of lk.transcription streams, run in the browser on streams shaped like
    livekit-agents' (agent: deltas, JSON lines or plain text; user: whole-text interim streams,
    the last marked final): each segment ends as one text, final."""
    stack, _ = sandbox
    page = browser().new_page()
    page.goto(stack.proxy_url + "/debug")
    seen = page.evaluate("""import('/debug/static/debug-room.js').then(async (m) => {
        const stream = (id, final, chunks) => ({
          info: {id: 'TS_' + Math.random(), attributes: {'lk.segment_id': id,
                 'lk.transcription_final': final}},
          async *[Symbol.asyncIterator]() { yield* chunks; },
        });
        const last = {};
        const h = {transcript: (id, who, text, final) => { last[id] = {who, text, final}; }};
        await m.readTranscript(stream('SG_a', 'false', ['{"text": "The capital"}\\n',
                                                        '{"text": " is Paris."}\\n']), 'agent', h);
        await m.readTranscript(stream('SG_b', 'false', ['Hello', ' there']), 'agent', h);
        await m.readTranscript(stream('SG_u', 'false', ['what is the']), 'user', h);
        const interim = {...last.SG_u};
        await m.readTranscript(stream('SG_u', 'true', ['what is the capital']), 'user', h);
        return {last, interim};
    })""")
    assert seen["last"]["SG_a"] == {"who": "agent", "text": "The capital is Paris.", "final": True}
    assert seen["last"]["SG_b"]["text"] == "Hello there"
    assert seen["interim"] == {"who": "user", "text": "what is the", "final": False}
    assert seen["last"]["SG_u"] == {"who": "user", "text": "what is the capital", "final": True}
