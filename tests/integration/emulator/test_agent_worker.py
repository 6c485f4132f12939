"""A real livekit-agents AgentServer (subprocess) against the server's /agent socket."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from emulator_helpers import (
    WebhookSink,
    assert_no_children_left,
    dispatch_jobs,
)
from livekit import api
from livekit.protocol import agent as agent_pb
from livekit.protocol import models

from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process]


async def test_agent_socket_auth(livekit_server: Any) -> None:
    """/agent needs a video.agent token (else 401) and a WebSocket upgrade (else 404)."""
    url = f"{livekit_server.http_url}/agent"
    key, secret = livekit_server.api_key, livekit_server.api_secret
    agent_tok = api.AccessToken(key, secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
    plain_tok = api.AccessToken(key, secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {agent_tok}"}) as resp:
            assert resp.status == 404
        for headers in ({}, {"Authorization": f"Bearer {plain_tok}"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(url, headers=headers)
            assert err.value.status == 401


async def test_worker_ping_gets_pong(livekit_server: Any) -> None:
    """A raw worker registers (AW_ id, server_info) and a WorkerPing is answered by a WorkerPong."""
    token = (
        api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
        .with_grants(api.VideoGrants(agent=True))
        .to_jwt()
    )
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{livekit_server.url}/agent?access_token={token}") as ws,
    ):
        reg = agent_pb.WorkerMessage(
            register=agent_pb.RegisterWorkerRequest(
                type=agent_pb.JT_ROOM, agent_name="raw", version="test"
            )
        )
        await ws.send_bytes(reg.SerializeToString())
        first = agent_pb.ServerMessage.FromString(await ws.receive_bytes(timeout=10))
        assert first.register.worker_id.startswith("AW_") and first.register.server_info.version
        await ws.send_bytes(
            agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=1234)).SerializeToString()
        )
        pong = agent_pb.ServerMessage.FromString(await ws.receive_bytes(timeout=10))
        assert pong.pong.last_timestamp == 1234 and pong.pong.timestamp > 0


async def test_named_worker_gets_explicit_dispatch(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """A worker named "voice" gets the JobRequest of CreateDispatch; ListDispatch shows the job."""
    worker = workers(livekit_server, "voice")
    worker_id = await worker.registered()
    if livekit_server.is_emulator:
        state = livekit_server.state()
        assert [w["agent_name"] for w in state["workers"] if w["id"] == worker_id] == ["voice"]
    dispatch = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="voice", room="aw-room-1", metadata="hello")
    )
    request = await worker.wait_event("job_request", 20, lambda e: e["dispatch_id"] == dispatch.id)
    assert request["room"] == "aw-room-1" and request["agent_name"] == "voice"
    jobs = await wait_for_async(
        lambda: dispatch_jobs(lkapi, "aw-room-1", "voice"), 15, "the job in ListDispatch"
    )
    assert jobs[0].id == request["job_id"]
    assert jobs[0].state.worker_id == worker_id
    assert jobs[0].state.status == agent_pb.JS_RUNNING
    assert jobs[0].state.participant_identity == f"agent-{request['job_id']}"
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_plain_room_never_dispatches_named_agent(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """CreateRoom without agents gets only the unnamed dispatch; named workers never hear of it."""
    worker = workers(livekit_server, "voice")
    await worker.registered()
    await lkapi.room.create_room(api.CreateRoomRequest(name="aw-plain"))
    listed = await lkapi.agent_dispatch.list_dispatch("aw-plain")
    assert [d.agent_name for d in listed] == [""]
    # Control: a later explicit dispatch reaches the same worker, so the plain room's (earlier)
    # dispatch would have arrived first if it were ever going to.
    control = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="voice", room="aw-control")
    )
    await worker.wait_event("job_request", 20, lambda e: e["dispatch_id"] == control.id)
    assert [e["room"] for e in worker.events("job_request")] == ["aw-control"]
    assert await dispatch_jobs(lkapi, "aw-plain", "") == []
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_create_room_with_agents_dispatches(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """CreateRoom with agents=[RoomAgentDispatch("voice")] dispatches that named agent."""
    worker = workers(livekit_server, "voice")
    await worker.registered()
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name="aw-agents", agents=[api.RoomAgentDispatch(agent_name="voice", metadata="cfg")]
        )
    )
    request = await worker.wait_event("job_request", 20, lambda e: e["room"] == "aw-agents")
    jobs = await wait_for_async(
        lambda: dispatch_jobs(lkapi, "aw-agents", "voice"), 15, "the job in ListDispatch"
    )
    assert jobs[0].id == request["job_id"]
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_end_to_end_dispatch_join_webhook(
    livekit_server_factory: Any, webhook_sink: WebhookSink, workers: Any
) -> None:
    """Dispatch -> JobRequest -> ctx.connect() -> ACTIVE agent -> participant_joined, in < 15 s."""
    server = livekit_server_factory("--webhook-url", webhook_sink.url)
    if not server.is_emulator:
        pytest.skip("webhooks go to the URL configured on the real server")
    worker = workers(server, "voice", connect=True)
    await worker.registered()
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        started = time.monotonic()
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="voice", room="e2e-room")
        )
        await worker.wait_event("job_request", 15, lambda e: e["dispatch_id"] == dispatch.id)
        await worker.wait_event("connected", 15, lambda e: e["room"] == "e2e-room")
        joined = await wait_for_async(
            lambda: [e for e in webhook_sink.events if e.event == "participant_joined"],
            15,
            "participant_joined webhook",
        )
        elapsed = time.monotonic() - started
        assert joined[0].participant.kind == models.ParticipantInfo.Kind.AGENT
        assert joined[0].participant.state == models.ParticipantInfo.State.ACTIVE
        assert joined[0].participant.attributes["lk.agent_name"] == "voice"
        assert joined[0].room.name == "e2e-room"
        parts = await lk.room.list_participants(api.ListParticipantsRequest(room="e2e-room"))
        assert [p.kind for p in parts.participants] == [models.ParticipantInfo.Kind.AGENT]
        assert elapsed < 15
        await lk.room.delete_room(api.DeleteRoomRequest(room="e2e-room"))
        await wait_for_async(lambda: "room_finished" in webhook_sink.names(), 10, "room_finished")
    assert webhook_sink.names()[0] == "room_started"
    assert "participant_left" in webhook_sink.names() and not webhook_sink.rejected
    worker.stop()
    assert_no_children_left(server.pid)


async def test_delete_dispatch_terminates_the_job(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """DeleteDispatch sends JobTermination: the agent leaves the room and the job ends."""
    worker = workers(livekit_server, "voice", connect=True)
    await worker.registered()
    dispatch = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="voice", room="aw-term")
    )
    await worker.wait_event("connected", 20, lambda e: e["room"] == "aw-term")

    async def participants() -> list[Any]:
        req = api.ListParticipantsRequest(room="aw-term")
        return list((await lkapi.room.list_participants(req)).participants)

    assert len(await participants()) == 1
    await lkapi.agent_dispatch.delete_dispatch(dispatch.id, "aw-term")

    async def gone() -> bool:
        return not await participants()

    await wait_for_async(gone, 20, "the agent to leave after JobTermination")
    if livekit_server.is_emulator:
        job = livekit_server.state()["workers"][0]["jobs"][0]
        await wait_for_async(
            lambda: livekit_server.state()["workers"][0]["jobs"][0]["status"] != "JS_RUNNING",
            20,
            "the worker to report the job's end",
        )
        assert job["dispatch_id"] == dispatch.id
    worker.stop()
    assert_no_children_left(livekit_server.pid)
