"""Issue 11, item 1: a browser token cannot take the agent's place in a call, and an agent that
loses its call to an impersonator is a counted cut, never a success."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from livekit import api
from livekit.protocol import models

from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.livekit]
CALLER = Path(__file__).with_name("caller_script.py")
ROOM = "e2e-impersonation"


def agents_in(lk: Any, room: str) -> list[str]:
    async def go() -> list[Any]:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
            res = await client.room.list_participants(api.ListParticipantsRequest(room=room))
            return list(res.participants)
    return [p.identity for p in asyncio.run(go())
            if p.kind == models.ParticipantInfo.Kind.AGENT]


class Caller:
    def __init__(self, url: str, token: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CALLER), url, token],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # bounded: connect() times out by itself
        assert line == "connected", line

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def test_agent_identity_token_is_refused_and_an_impersonator_is_a_counted_cut(
        stack_factory: Any, livekit_server: Any) -> None:
    """POST /api/token for the agent's identity is 400 and the agent stays in the call; a token
    for that identity from elsewhere cuts the call: jobs_total{outcome=cut} and
    calls_cut_total{reason=impersonated} count it, success does not."""
    stack = stack_factory(workers=1)
    code, minted = stack.post("/api/token", {"room": ROOM, "identity": "caller-1"})
    assert code == 200, minted
    human = Caller(minted["url"], minted["token"])
    impostor: Caller | None = None
    try:
        body = stack.dispatch(ROOM)[1]
        stack.wait_joined(body["dispatch_id"])
        (agent,) = wait_for(lambda: agents_in(livekit_server, ROOM), 15, "the agent listed")
        assert agent.startswith("agent-")
        for identity in (agent, agent.upper(), "voiceops-probe"):
            code, refused = stack.post("/api/token", {"room": ROOM, "identity": identity})
            assert code == 400 and refused["error"]["code"] == "reserved_identity", refused
        code, refused = stack.post("/api/token", {"room": "voiceops-probe-x-1",
                                                   "identity": "caller-2"})
        assert code == 400 and refused["error"]["code"] == "reserved_room", refused
        assert agents_in(livekit_server, ROOM) == [agent], "the agent stays in the call"
        assert stack.sup.metric("voiceops_jobs_total", outcome="cut") == 0
        # A token for the agent's identity that did not come from the proxy (a leaked key).
        token = (api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
                 .with_identity(agent).with_grants(api.VideoGrants(room_join=True, room=ROOM))
                 .to_jwt())
        impostor = Caller(livekit_server.url, token)
        wait_for(lambda: stack.sup.metric("voiceops_calls_cut_total", reason="impersonated") == 1,
                 30, "the cut call counted")
        assert stack.sup.metric("voiceops_jobs_total", outcome="cut") == 1
        assert stack.sup.metric("voiceops_jobs_total", outcome="success") == 0
        assert stack.sup.log_matches(r"call_cut job_id=\S+ reason=impersonated")
    finally:
        for caller in (impostor, human):
            if caller is not None:
                caller.close()
