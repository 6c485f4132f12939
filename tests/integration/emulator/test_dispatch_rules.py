"""The Go server's dispatch rules, with a real livekit-agents worker and the livekit-api client.

Each test also runs unchanged against a real `livekit-server --dev` (LIVEKIT_URL set); the
emulator-only checks (its log, /emulator/state) are guarded by `is_emulator`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import (
    assert_no_children_left,
    dispatch_jobs,
)
from livekit import api

from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process]


def _job_state(server: Any, job_id: str) -> dict[str, Any] | None:
    for worker in server.state()["workers"]:
        for job in worker["jobs"]:
            if job["job_id"] == job_id:
                return job
    return None


async def _dispatch(lk: api.LiveKitAPI, agent: str, room: str, **steer: Any) -> Any:
    req = api.CreateAgentDispatchRequest(agent_name=agent, room=room, metadata=json.dumps(steer))
    return await lk.agent_dispatch.create_dispatch(req)


async def _participants(lk: api.LiveKitAPI, room: str) -> list[str]:
    try:
        resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return []
    return [p.identity for p in resp.participants]


async def test_workers_at_target_load_get_no_job_request(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any, tmp_path: Path
) -> None:
    """A worker reporting load 0.8 (still AVAILABLE) gets no JobRequest: 0.7 - 0.8 is no claim."""
    load_file = tmp_path / "load"
    load_file.write_text("0.8", encoding="utf-8")
    loaded = workers(livekit_server, "tl", load_file=load_file)
    loaded_id = await loaded.registered()
    # The worker read load 0.8 before it registered, so its first status already carries it.
    await loaded.wait_event("load", 10, lambda e: e["load"] == 0.8)
    if livekit_server.is_emulator:
        await wait_for_async(
            lambda: [w for w in livekit_server.state()["workers"] if abs(w["load"] - 0.8) < 1e-3],
            10,
            "the emulator to see load 0.8",
        )
        assert [w["status"] for w in livekit_server.state()["workers"]] == ["WS_AVAILABLE"]
    refused = await _dispatch(lkapi, "tl", "tl-full")
    # Control: a second worker at load 0 takes the next dispatch. Had the first dispatch been
    # offered, it would have reached the only worker there was, long before this one.
    free = workers(livekit_server, "tl")
    await free.registered()
    control = await _dispatch(lkapi, "tl", "tl-free")
    await wait_for_async(
        lambda: [e for w in (loaded, free) for e in w.events("job_request")],
        20,
        "the control dispatch's JobRequest",
    )
    offered = [e["dispatch_id"] for w in (loaded, free) for e in w.events("job_request")]
    assert offered == [control.id]
    assert await dispatch_jobs(lkapi, "tl-full", "tl") == []
    if livekit_server.is_emulator:
        assert "reason=no_servers_available" in livekit_server.log_text()
        assert loaded_id not in {
            j["state"]["worker_id"] for j in _jobs_of(livekit_server, refused.id)
        }
    loaded.stop()
    free.stop()
    assert_no_children_left(livekit_server.pid)


def _jobs_of(server: Any, dispatch_id: str) -> list[dict[str, Any]]:
    return [j for d in server.state()["dispatches"] if d["id"] == dispatch_id for j in d["jobs"]]


async def test_answer_after_three_seconds_loses_the_job(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """An answer 4 s after the JobRequest comes after psrpc's 3 s deadline: no job, no retry."""
    # Two idle processes: a pending request reserves 0.95/2 of load, so the worker stays
    # AVAILABLE (with one, livekit-agents reports WS_FULL until the request is settled).
    worker = workers(livekit_server, "slow", idle=2)
    await worker.registered()
    late = await _dispatch(lkapi, "slow", "dl-late", answer_delay_s=4)
    request = await worker.wait_event("job_request", 20, lambda e: e["dispatch_id"] == late.id)
    await worker.wait_event("answering", 10, lambda e: e["job_id"] == request["job_id"])
    # The worker waits 7.5 s for an assignment that never comes, and gives up.
    await worker.wait_event(
        "log", 20, lambda e: f"assignment for job {request['job_id']} timed out" in e["msg"]
    )
    assert worker.events("job_started") == []
    assert await dispatch_jobs(lkapi, "dl-late", "slow") == []
    assert [e["dispatch_id"] for e in worker.events("job_request")] == [late.id]  # not retried
    # Control: an answer after 1.5 s is inside the deadline and gets the job.
    prompt = await _dispatch(lkapi, "slow", "dl-prompt", answer_delay_s=1.5)
    await worker.wait_event("job_started", 20, lambda e: e["dispatch_id"] == prompt.id)
    if livekit_server.is_emulator:
        assert "availability_timeout" in livekit_server.log_text()
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_longer_availability_knob_departs_from_go(
    livekit_server_factory: Any, workers: Any
) -> None:
    """--availability-timeout-s 8 (an emulator knob, not Go's rule) lets a 4 s answer win."""
    server = livekit_server_factory("--availability-timeout-s", "8")
    if not server.is_emulator:
        pytest.skip("the availability knob belongs to the voiceops emulator")
    worker = workers(server, "patient")
    await worker.registered()
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        late = await _dispatch(lk, "patient", "knob-room", answer_delay_s=4)
        await worker.wait_event("job_started", 20, lambda e: e["dispatch_id"] == late.id)
    worker.stop()
    assert_no_children_left(server.pid)


async def test_agent_leaving_the_room_ends_its_job(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """The agent participant leaves while its job runs: the server terminates the job."""
    worker = workers(livekit_server, "leaver")
    await worker.registered()
    dispatch = await _dispatch(lkapi, "leaver", "left-room", side_room=True, leave=True)
    started = await worker.wait_event("job_started", 20, lambda e: e["dispatch_id"] == dispatch.id)
    job_id = started["job_id"]
    await worker.wait_event("side_left", 20, lambda e: e["job_id"] == job_id)
    # Nothing in the job ends it: only the server's JobTermination shuts it down.
    await worker.wait_event("job_shutdown", 15, lambda e: e["job_id"] == job_id)
    assert worker.events("stopped") == []
    if livekit_server.is_emulator:
        job = _job_state(livekit_server, job_id)
        assert job is not None
        assert (job["status"], job["error"]) == ("JS_FAILED", "agent worker left the room")
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_delete_dispatch_removes_an_agent_that_stays(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """DeleteDispatch ends the job JS_SUCCESS; an agent still in the room ~3 s later is removed."""
    worker = workers(livekit_server, "stayer")
    await worker.registered()
    dispatch = await _dispatch(lkapi, "stayer", "stay-room", side_room=True, linger_s=8)
    joined = await worker.wait_event("side_joined", 20, lambda e: e["job_id"] != "")
    job_id = joined["job_id"]
    assert await _participants(lkapi, "stay-room") == [joined["identity"]]
    await lkapi.agent_dispatch.delete_dispatch(dispatch.id, "stay-room")
    await worker.wait_event("job_shutdown", 15, lambda e: e["job_id"] == job_id)

    async def agent_gone() -> bool:
        return joined["identity"] not in await _participants(lkapi, "stay-room")

    await wait_for_async(agent_gone, 15, "the server to remove the lingering agent")
    # The server removed it while the job still meant to stay 8 s.
    disconnected = await worker.wait_event("side_disconnected", 10, lambda e: e["job_id"] == job_id)
    assert worker.events("linger_done") == [] or (
        worker.events("linger_done")[0]["ts"] > disconnected["ts"]
    )
    if livekit_server.is_emulator:
        job = _job_state(livekit_server, job_id)
        assert job is not None and (job["status"], job["error"]) == ("JS_SUCCESS", "")
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_agents_do_not_count_towards_max_participants(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any, rtc_clients: Any
) -> None:
    """max_participants=1 with the agent inside still admits one caller, and only one."""
    worker = workers(livekit_server, "counted", connect=True)
    await worker.registered()
    await lkapi.room.create_room(api.CreateRoomRequest(name="max-room", max_participants=1))
    await _dispatch(lkapi, "counted", "max-room")
    await worker.wait_event("connected", 20, lambda e: e["room"] == "max-room")
    first, second = await rtc_clients(2)
    await first.send("connect", livekit_server.url, _caller_token(livekit_server, "caller-1"))
    assert (await first.expect("connected", "failed", timeout_s=20))["event"] == "connected"
    await second.send("connect", livekit_server.url, _caller_token(livekit_server, "caller-2"))
    assert (await second.expect("connected", "failed", timeout_s=40))["event"] == "failed"
    worker.stop()
    assert_no_children_left(livekit_server.pid, *rtc_clients.pids())


async def test_room_only_an_agent_entered_closes_on_empty_timeout(
    livekit_server: Any, lkapi: api.LiveKitAPI, workers: Any
) -> None:
    """An agent alone neither marks the room joined nor keeps it open: empty_timeout closes it."""
    worker = workers(livekit_server, "alone", connect=True)
    await worker.registered()
    await lkapi.room.create_room(api.CreateRoomRequest(name="alone-room", empty_timeout=2))
    await _dispatch(lkapi, "alone", "alone-room")
    await worker.wait_event("connected", 20, lambda e: e["room"] == "alone-room")

    async def closed() -> bool:
        rooms = await lkapi.room.list_rooms(api.ListRoomsRequest(names=["alone-room"]))
        return not rooms.rooms

    await wait_for_async(closed, 30, "the agent-only room to close")
    worker.stop()
    assert_no_children_left(livekit_server.pid)


def _caller_token(server: Any, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="max-room")
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )

