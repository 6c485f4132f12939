"""Fault injection against a real worker: swallowed requests, late assignments, dropped sockets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from emulator_helpers import assert_no_children_left, dispatch_jobs
from livekit import api

from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process, pytest.mark.faults]


def _post(http_url: str, body: str, method: str = "POST") -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{http_url}/emulator/faults", data=body.encode(), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_swallowed_job_request_leaves_no_job(
    livekit_server_factory: Any, workers: Any
) -> None:
    """With swallow_job_requests the worker never sees the JobRequest and no job is ever listed."""
    server = livekit_server_factory("--availability-timeout-s", "1.5")
    server.faults.set(swallow_job_requests=["voice"])
    worker = workers(server, "voice")
    await worker.registered()
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        swallowed = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="voice", room="f-swallow")
        )
        server.faults.clear()
        # Control dispatch after the clear: it arrives, so the swallowed one had its chance.
        control = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="voice", room="f-control")
        )
        await worker.wait_event("job_request", 20, lambda e: e["dispatch_id"] == control.id)
        # Past the availability timeout the swallowed dispatch is settled for good (no retry).
        await wait_for_async(lambda: "availability_timeout" in server.log_text(), 10, "timeout log")
        assert await dispatch_jobs(lk, "f-swallow", "voice") == []
        listed = await lk.agent_dispatch.list_dispatch("f-swallow")
        assert [d.id for d in listed if d.agent_name == "voice"] == [swallowed.id]
    assert [e["dispatch_id"] for e in worker.events("job_request")] == [control.id]
    assert "fault_swallow_job_request" in server.log_text()
    worker.stop()
    assert_no_children_left(server.pid)


async def test_late_assignment_times_out_in_worker(livekit_server: Any, workers: Any) -> None:
    """assignment_delay_s=9 outlasts the worker's 7.5 s timeout: it logs that and runs no job."""
    worker = workers(livekit_server, "voice")
    await worker.registered()
    livekit_server.faults.set(assignment_delay_s=9)
    async with api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    ) as lk:
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="voice", room="f-late")
        )
        request = await worker.wait_event(
            "job_request", 20, lambda e: e["dispatch_id"] == dispatch.id
        )
        log = await worker.wait_event(
            "log", 20, lambda e: f"assignment for job {request['job_id']} timed out" in e["msg"]
        )
        assert log["level"] == "WARNING"
        # The assignment is sent after the delay (as on the Go server), to a worker that gave up.
        await wait_for_async(lambda: "job_assigned" in livekit_server.log_text(), 10,
                             "late assignment")
    assert worker.events("job_started") == []
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_dropped_worker_reregisters_with_new_id(livekit_server: Any, workers: Any) -> None:
    """drop_workers closes the worker's socket once; it reconnects and registers under a new id."""
    worker = workers(livekit_server, "voice")
    first_id = await worker.registered()
    livekit_server.faults.set(drop_workers=True)
    second = await worker.wait_event("registered", 30, lambda e: e["worker_id"] != first_id)
    ids = [w["id"] for w in livekit_server.state()["workers"]]
    assert ids == [second["worker_id"]]
    worker.stop()
    assert_no_children_left(livekit_server.pid)


async def test_faults_json_is_validated(livekit_server: Any) -> None:
    """Unknown keys and wrong types get 400 naming the key; DELETE clears everything."""
    if not livekit_server.is_emulator:
        pytest.skip("fault injection needs the voiceops emulator")
    url = livekit_server.http_url
    status, body = _post(url, '{"swallow_jobs": true}')
    assert (status, body["key"]) == (400, "swallow_jobs")
    status, body = _post(url, '{"assignment_delay_s": "9"}')
    assert (status, body["key"]) == (400, "assignment_delay_s")
    status, body = _post(url, '{"twirp_error": 200}')
    assert (status, body["key"]) == (400, "twirp_error")
    status, body = _post(url, '{"refuse_media": 1}')
    assert (status, body["key"]) == (400, "refuse_media")
    status, body = _post(url, "[1]")
    assert status == 400
    status, body = _post(url, '{"swallow_job_requests": true, "refuse_media": true}')
    assert status == 200 and body["faults"]["swallow_job_requests"] is True
    assert livekit_server.state()["faults"]["refuse_media"] is True
    status, body = _post(url, "", method="DELETE")
    assert status == 200 and body["faults"]["refuse_media"] is False
    assert body["faults"]["swallow_job_requests"] == []
