"""POST /api/dispatch-agent against a LiveKit server: creates, reuses, and refuses bad input."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from proxy_helpers import AGENT_NAME, dispatches_in

pytestmark = pytest.mark.livekit


def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


async def test_dispatch_creates_one_dispatch_with_letta_agent_metadata(
        livekit_server_module, make_proxy, event_sink):
    """A dispatch creates exactly one LiveKit dispatch of our agent carrying the Letta agent id."""
    proxy = await make_proxy(livekit_server_module)
    room = room_name()
    ans = await proxy.dispatch({"room": room, "agent_id": "agent-123",
                                "metadata": {"lang": "en"}})
    assert ans.status == 200, ans.text
    body = ans.body
    assert body["success"] is True and body["reused"] is False and body["room_existed"] is False
    assert body["room"] == room and body["agent_name"] == AGENT_NAME and body["message"]
    found = await dispatches_in(livekit_server_module, room)
    assert [d.id for d in found] == [body["dispatch_id"]]
    assert found[0].agent_name == AGENT_NAME
    assert json.loads(found[0].metadata) == {"lang": "en", "letta_agent_id": "agent-123"}
    event = await event_sink.wait_for("dispatch_created")
    assert event["dispatch_id"] == body["dispatch_id"] and event["room"] == room
    assert event["agent_name"] == AGENT_NAME and event["reused"] is False
    assert 0 < event["latency_s"] < 10


async def test_second_dispatch_to_a_room_is_reused(livekit_server_module, make_proxy, event_sink):
    """A second dispatch to the same room returns the first one with reused=true, not a new one."""
    proxy = await make_proxy(livekit_server_module)
    room = room_name()
    first = await proxy.dispatch({"room": room})
    second = await proxy.dispatch({"room": room, "agent_id": "agent-other"})
    assert first.status == 200 and second.status == 200, second.text
    assert second.body["reused"] is True and second.body["room_existed"] is True
    assert second.body["dispatch_id"] == first.body["dispatch_id"]
    assert "agent-other" in second.body["message"]  # says the running dispatch has another agent
    assert len(await dispatches_in(livekit_server_module, room)) == 1
    created = [e for e in event_sink.of_type("dispatch_created") if e["room"] == room]
    assert [e["reused"] for e in created] == [False, True]


async def test_concurrent_double_click_makes_one_dispatch(livekit_server_module, make_proxy):
    """Two simultaneous dispatches for one room create a single dispatch (per-room lock)."""
    proxy = await make_proxy(livekit_server_module)
    room = room_name()
    answers = await asyncio.gather(*(proxy.dispatch({"room": room}) for _ in range(3)))
    assert all(a.status == 200 for a in answers), [a.text for a in answers]
    assert len({a.body["dispatch_id"] for a in answers}) == 1
    assert sorted(a.body["reused"] for a in answers) == [False, True, True]
    assert len(await dispatches_in(livekit_server_module, room)) == 1


async def test_dispatch_without_agent_id_uses_default_letta_agent(livekit_server_module,
                                                                  make_proxy):
    """With no agent_id, letta.default_agent_id (when set) goes into the dispatch metadata."""
    proxy = await make_proxy(livekit_server_module,
                             option_overrides={"default_letta_agent_id": "agent-default"})
    room = room_name()
    assert (await proxy.dispatch({"room": room})).status == 200
    (found,) = await dispatches_in(livekit_server_module, room)
    assert json.loads(found.metadata) == {"letta_agent_id": "agent-default"}


BAD_BODIES = [
    pytest.param(b"{not json", 400, "invalid_json", id="bad-json"),
    pytest.param(b"", 400, "bad_request", id="empty-body"),
    pytest.param(b'["room"]', 400, "bad_request", id="not-an-object"),
    pytest.param(b"{}", 400, "missing_room", id="missing-room"),
    pytest.param(b'{"room": "has space"}', 400, "bad_request", id="bad-room-chars"),
    pytest.param(json.dumps({"room": "r" * 129}).encode(), 400, "bad_request", id="room-too-long"),
    pytest.param(b'{"room": 5}', 400, "bad_request", id="room-not-string"),
    pytest.param(b'{"room": "ok", "agent_id": "a/b"}', 400, "bad_request", id="bad-agent-id"),
    pytest.param(b'{"room": "ok", "metadata": "x"}', 400, "bad_request", id="metadata-not-object"),
    pytest.param(b'{"room": "ok", "metadata": {"voiceops_probe": true}}', 400, "bad_request",
                 id="reserved-metadata"),
    pytest.param(b'{"room": "ok", "extra": 1}', 400, "bad_request", id="unknown-field"),
]


@pytest.mark.parametrize(("data", "status", "code"), BAD_BODIES)
async def test_bad_input_is_refused_and_makes_no_dispatch(livekit_server_module, make_proxy,
                                                          event_sink, data, status, code):
    """Bad input gets a specific 4xx, a dispatch_failed{bad_request} event, and no dispatch."""
    proxy = await make_proxy(livekit_server_module)
    room = room_name()
    payload = data.replace(b'"ok"', json.dumps(room).encode())
    ans = await proxy.dispatch(None, data=payload)
    assert ans.status == status, ans.text
    assert ans.error_code == code and ans.body["error"]["message"]
    assert "Traceback" not in ans.text
    assert await dispatches_in(livekit_server_module, room) == []
    failed = await event_sink.wait_for("dispatch_failed")
    assert failed["reason"] == "bad_request" and failed["latency_s"] >= 0


async def test_error_messages_say_what_is_wrong(livekit_server_module, make_proxy):
    """Validation errors name the field and the problem."""
    proxy = await make_proxy(livekit_server_module)
    too_long = await proxy.dispatch({"room": "x" * 200})
    assert too_long.body["error"]["message"] == "room: is 200 characters long; the limit is 128"
    bad_chars = await proxy.dispatch({"room": "a b/c"})
    bad_message = bad_chars.body["error"]["message"]
    assert "' '" in bad_message and "'/'" in bad_message
    missing = await proxy.dispatch({"agent_id": "agent-1"})
    assert missing.body["error"]["message"] == "room: missing (a required field)"


async def test_oversized_body_is_413_and_makes_no_dispatch(livekit_server_module, make_proxy,
                                                           event_sink):
    """A body over proxy.max_body_bytes is refused with 413 before anything is dispatched."""
    proxy = await make_proxy(livekit_server_module, max_body_bytes=256)
    room = room_name()
    ans = await proxy.dispatch({"room": room, "metadata": {"pad": "x" * 400}})
    assert ans.status == 413 and ans.error_code == "body_too_large"
    assert "256" in ans.body["error"]["message"]
    assert await dispatches_in(livekit_server_module, room) == []
    assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "bad_request"


async def test_unknown_route_and_wrong_method_use_the_error_shape(livekit_server_module,
                                                                   make_proxy):
    """404 and 405 answer in the JSON error shape, not aiohttp's text pages."""
    proxy = await make_proxy(livekit_server_module)
    missing = await proxy.call("GET", "/api/nope")
    assert missing.status == 404 and missing.error_code == "not_found"
    wrong = await proxy.call("GET", "/api/dispatch-agent")
    assert wrong.status == 405 and wrong.error_code == "method_not_allowed"
