"""The proxy answers from its room book where it knows for sure: one LiveKit call for a new
room, none for a double click, and still the right answer after a restart (cold cache)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from proxy_helpers import dispatches_in

pytestmark = pytest.mark.livekit


def calls(lk: Any) -> Counter[str]:
    return Counter(lk.state()["twirp_calls"])  # skips on a real server


async def test_new_room_dispatch_is_one_livekit_call(livekit_server_module, make_proxy):
    """Once the room list is taken, a new room costs one CreateDispatch and a repeat costs none."""
    lk = livekit_server_module
    proxy = await make_proxy(lk)
    await proxy.room_list_taken()
    room = f"rt-{uuid.uuid4().hex[:10]}"
    before = calls(lk)
    first = await proxy.dispatch({"room": room})
    assert first.status == 200 and first.body["reused"] is False, first.text
    assert calls(lk) - before == Counter({"livekit.AgentDispatchService/CreateDispatch": 1})
    mid = calls(lk)
    again = await proxy.dispatch({"room": room})
    assert again.body["reused"] is True and again.body["dispatch_id"] == first.body["dispatch_id"]
    assert calls(lk) - mid == Counter()
    assert [d.id for d in await dispatches_in(lk, room)] == [first.body["dispatch_id"]]


async def test_restarted_proxy_reuses_its_predecessors_dispatch(livekit_server_module,
                                                                make_proxy):
    """A new proxy process (cold cache) asks LiveKit about a room that existed before it
    started, and reuses the live dispatch found there instead of creating a second agent."""
    lk = livekit_server_module
    room = f"rt-{uuid.uuid4().hex[:10]}"
    before_restart = await make_proxy(lk)
    first = await before_restart.dispatch({"room": room})
    assert first.status == 200 and first.body["reused"] is False, first.text
    after_restart = await make_proxy(lk)
    await after_restart.room_list_taken()
    again = await after_restart.dispatch({"room": room})
    assert again.status == 200, again.text
    assert again.body["reused"] is True and again.body["dispatch_id"] == first.body["dispatch_id"]
    assert [d.id for d in await dispatches_in(lk, room)] == [first.body["dispatch_id"]]


async def test_dispatch_before_the_room_list_asks_livekit(livekit_server_module, make_proxy):
    """Until its first room list, a proxy never assumes a room is new: it asks LiveKit."""
    lk = livekit_server_module
    room = f"rt-{uuid.uuid4().hex[:10]}"
    first = await (await make_proxy(lk)).dispatch({"room": room})
    lk.faults.set(twirp_delay_s=0.3)  # the next proxy's room list is still on its way
    try:
        proxy = await make_proxy(lk)
        again = await proxy.dispatch({"room": room})
    finally:
        lk.faults.clear()
    assert again.body["reused"] is True and again.body["dispatch_id"] == first.body["dispatch_id"]
