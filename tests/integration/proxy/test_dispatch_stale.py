"""POST /api/dispatch-agent replaces a dispatch whose agent will never come, reuses a fresh one."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from livekit import api
from livekit.protocol import agent_dispatch
from proxy_helpers import AGENT_NAME, WAIT_S, RawWorker, dispatches_in

from voiceops.testing.waiting import wait_for_async

pytestmark = pytest.mark.livekit

GRACE_S = 1.0  # short, so a dispatch goes stale within the test (the default is 30 s)
GRACE = {"dispatch_grace_s": GRACE_S}


def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


async def create_directly(lk: Any, room: str) -> agent_dispatch.AgentDispatch:
    """A dispatch of our agent made behind the proxy's back (as a previous session would)."""
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
        return await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room))


def older_than_grace(since_ns: int) -> bool:
    return time.time_ns() - since_ns > GRACE_S * 1e9


async def test_stale_dispatch_without_job_is_replaced(livekit_server_module, make_proxy,
                                                      event_sink):
    """A dispatch from before the proxy started (cold cache) that never got a job and is older
    than the grace is deleted and replaced."""
    lk = livekit_server_module
    room = room_name()
    old = await create_directly(lk, room)  # no worker is registered: it never gets a job
    proxy = await make_proxy(lk, option_overrides=GRACE)
    await proxy.room_list_taken()
    await wait_for_async(lambda: older_than_grace(old.state.created_at), WAIT_S,
                         "old dispatch aged")
    ans = await proxy.dispatch({"room": room})
    assert ans.status == 200, ans.text
    body = ans.body
    assert body["reused"] is False and body["room_existed"] is True
    assert body["dispatch_id"] != old.id
    assert f"replaced stale dispatch {old.id} (no worker ever took its job)" in body["message"]
    assert [d.id for d in await dispatches_in(lk, room)] == [body["dispatch_id"]]
    event = await event_sink.wait_for("dispatch_created", room=room)
    assert event["reused"] is False and event["dispatch_id"] == body["dispatch_id"]


async def test_fresh_dispatch_without_job_is_reused(livekit_server_module, make_proxy):
    """A dispatch younger than the grace (its JobRequest may still come) is reused, also when
    it was made before the proxy started (cold cache)."""
    lk = livekit_server_module
    room = room_name()
    fresh = await create_directly(lk, room)  # before the proxy started: its cache is cold
    proxy = await make_proxy(lk)  # the default grace (30 s): the dispatch stays fresh
    await proxy.room_list_taken()
    ans = await proxy.dispatch({"room": room})
    assert ans.status == 200, ans.text
    assert ans.body["reused"] is True and ans.body["dispatch_id"] == fresh.id
    assert [d.id for d in await dispatches_in(lk, room)] == [fresh.id]


async def test_dispatch_whose_agent_left_is_replaced(livekit_server, make_proxy):
    """A dispatch whose job was assigned but whose agent is not in the room gets replaced."""
    proxy = await make_proxy(livekit_server, option_overrides=GRACE)
    room = room_name()
    async with RawWorker(livekit_server) as worker:
        first = await proxy.dispatch({"room": room})
        assert first.status == 200 and first.body["reused"] is False, first.text

        async def assigned_job() -> Any:
            found = await dispatches_in(livekit_server, room)
            return found[0].state.jobs[0] if found and found[0].state.jobs else None

        job = await wait_for_async(assigned_job, WAIT_S, "job assigned to the raw worker")
        assert job.id in worker.assigned and job.state.participant_identity
        await wait_for_async(lambda: older_than_grace(job.state.started_at), WAIT_S, "job aged")
        second = await proxy.dispatch({"room": room})
        assert second.status == 200, second.text
        old_id = first.body["dispatch_id"]
        assert second.body["reused"] is False and second.body["dispatch_id"] != old_id
        assert f"replaced stale dispatch {old_id} (its agent left the room)" in \
            second.body["message"]
        assert [d.id for d in await dispatches_in(livekit_server, room)] == \
            [second.body["dispatch_id"]]
