"""The stand-in's own surface: fault knobs validated, the down fault, and a state view that
holds counts, never callers' words."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import letta_client
import pytest
from letta_client import AsyncLetta

pytestmark = [pytest.mark.letta, pytest.mark.faults]


def _call(url: str, method: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(("body", "message"), [
    ({"nonsense": 1}, "nonsense: unknown fault"),
    ({"down_status": "503"}, "down_status: must be a int"),
    ({"down_status": 200}, "down_status: must be 0 or an HTTP error status"),
    ({"first_token_delay_s": -1}, "first_token_delay_s: must be within 0..600"),
])
def test_bad_fault_knobs_are_a_400_naming_the_knob(letta_server: Any, letta_faults: Any,
                                                   body: dict[str, Any], message: str) -> None:
    """An unknown knob or a bad value is refused with the knob's name; nothing changes."""
    code, answer = _call(letta_server.base_url + "/standin/faults", "POST", body)
    assert code == 400 and answer["error"].startswith(message)
    assert _call(letta_server.base_url + "/standin/state", "GET")[1]["faults"]["down_status"] == 0


async def test_down_fault_makes_every_letta_route_503_until_cleared(
        letta_server: Any, letta_faults: Any) -> None:
    """down_status=503: health and agents fail as a sick server's would; clearing heals."""
    client = AsyncLetta(base_url=letta_server.base_url, max_retries=0)
    try:
        letta_faults.set(down_status=503)
        with pytest.raises(letta_client.InternalServerError):
            await client.health()
        with pytest.raises(letta_client.InternalServerError):
            await client.agents.retrieve(letta_server.agent_id)
        letta_faults.clear()
        assert (await client.health()).status == "ok"
    finally:
        await client.close()


async def test_state_counts_turns_but_never_holds_their_words(letta_server: Any,
                                                             letta_faults: Any) -> None:
    """GET /standin/state lists agents and turn counts per thread, and no message text."""
    client = AsyncLetta(base_url=letta_server.base_url, max_retries=0)
    try:
        await client.agents.messages.create(letta_server.agent_id, input="secret words here")
    finally:
        await client.close()
    code, state = _call(letta_server.base_url + "/standin/state", "GET")
    assert code == 200 and state["threads"][letta_server.agent_id] >= 1
    assert "secret words" not in json.dumps(state)
    assert set(letta_server.agent_ids) <= set(state["agents"])
