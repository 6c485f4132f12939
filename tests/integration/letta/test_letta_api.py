"""letta-client 1.12 against the Letta server fixture: the calls voiceops makes, in the shapes
it parses. Against the stand-in these prove it tells the truth; with LETTA_BASE_URL the same
assertions run on a real Letta 0.16.8."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import letta_client
import pytest
from letta_client import AsyncLetta

from voiceops.letta_standin.brain import CAPITAL_ANSWER

pytestmark = [pytest.mark.letta]


@pytest.fixture
async def client(letta_server: Any) -> AsyncIterator[AsyncLetta]:
    c = AsyncLetta(base_url=letta_server.base_url, api_key=letta_server.api_key, max_retries=0)
    yield c
    await c.close()


def _collapse(types: list[str]) -> list[str]:
    return [t for t, _ in itertools.groupby(types)]


async def test_health_answers_ok_with_a_version(client: AsyncLetta) -> None:
    """GET /v1/health/ → status ok and the server version (what `voiceops check` reads)."""
    health = await client.health()
    assert health.status == "ok" and health.version


async def test_agents_list_pages_through_every_agent_with_name_and_description(
        client: AsyncLetta, letta_server: Any) -> None:
    """agents.list auto-paginates (?after=<last id>) and carries id, name and description."""
    agents = [a async for a in client.agents.list(limit=1)]
    ids = [a.id for a in agents]
    assert set(letta_server.agent_ids) <= set(ids)
    assert len(ids) == len(set(ids))  # no page repeats an agent
    ours = [a for a in agents if a.id in letta_server.agent_ids]
    assert all(a.name and a.description is not None for a in ours)


async def test_agents_retrieve_and_its_errors(client: AsyncLetta, letta_server: Any) -> None:
    """retrieve gives the agent; an unknown id is 404, a malformed one 422 (id pattern)."""
    agent = await client.agents.retrieve(letta_server.agent_id)
    assert agent.id == letta_server.agent_id and agent.name
    with pytest.raises(letta_client.NotFoundError):
        await client.agents.retrieve("agent-00000000-0000-4000-8000-000000000000")
    with pytest.raises(letta_client.UnprocessableEntityError):
        await client.agents.retrieve("agent-not-a-uuid")


async def test_token_stream_shape_ping_assistant_deltas_stop_reason_usage(
        client: AsyncLetta, letta_server: Any) -> None:
    """A streamed turn: ping first, then assistant_message deltas of one message, then
    stop_reason end_turn and usage_statistics; the deltas join to the reply."""
    conv = await client.conversations.create(agent_id=letta_server.agent_id)
    assert conv.id.startswith("conv-") and conv.agent_id == letta_server.agent_id
    stream = await client.conversations.messages.create(
        conv.id, input="what is the capital of france", streaming=True, stream_tokens=True,
        include_pings=True)
    events = [ev async for ev in stream]
    types = [ev.message_type for ev in events]
    assert types[0] == "ping"
    assert _collapse([t for t in types if t != "ping"]) == [
        "assistant_message", "stop_reason", "usage_statistics"]
    deltas = [ev for ev in events if ev.message_type == "assistant_message"]
    assert len(deltas) > 1 and len({d.id for d in deltas}) == 1
    assert "".join(d.content for d in deltas) == CAPITAL_ANSWER
    stop = next(ev for ev in events if ev.message_type == "stop_reason")
    assert stop.stop_reason == "end_turn"
    usage = events[-1]
    assert usage.completion_tokens and usage.total_tokens >= usage.completion_tokens


async def test_agent_messages_stream_and_whole_response(client: AsyncLetta,
                                                        letta_server: Any) -> None:
    """agents.messages.create: streamed tokens, and the non-streamed LettaResponse."""
    agent = letta_server.agent_ids[1]
    stream = await client.agents.messages.create(agent, input="hello robot", streaming=True,
                                                 stream_tokens=True)
    text = "".join([ev.content async for ev in stream if ev.message_type == "assistant_message"])
    assert text == "You said: hello robot."
    whole = await client.agents.messages.create(agent, input="what is the capital of france")
    assert [m.content for m in whole.messages if m.message_type == "assistant_message"] == [
        CAPITAL_ANSWER]
    assert whole.stop_reason.stop_reason == "end_turn"


def _raw_post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_streaming_is_refused_to_clients_that_are_not_letta_client_1(letta_server: Any) -> None:
    """Like 0.16.8: streaming=true without the SDK's headers is a 422 with the reason."""
    if letta_server.api_key:
        pytest.skip("the raw request carries no key")
    code, body = _raw_post(f"{letta_server.base_url}/v1/agents/{letta_server.agent_id}/messages",
                           {"input": "hi", "streaming": True})
    assert code == 422 and "SDK v1.0+" in body["detail"]
