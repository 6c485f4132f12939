"""A standby worker (``VOICEOPS_STANDBY=1``) is registered but takes no job until SIGUSR2."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import pytest
from livekit import api

from voiceops.events import JobRequest, Ready
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.process, pytest.mark.livekit]

READY_TIMEOUT_S = 45.0
JOB_TIMEOUT_S = 45.0
ROUNDS = 6  # an available standby would get none of 6 offers with chance 1/64 (weighted choice)


def worker_status(server: Any, worker_id: str) -> str:
    return next((w["status"] for w in server.state()["workers"] if w["id"] == worker_id), "")


async def dispatch_round(lkapi: Any, sink: EventRecorder, agent_name: str,
                         n: int) -> list[JobRequest]:
    """``n`` dispatches to new rooms; their JobRequests once every one has arrived."""
    ids = []
    for _ in range(n):
        d = await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=f"sb-{uuid.uuid4().hex[:8]}"))
        ids.append(d.id)
    return [await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=i) for i in ids]


async def test_standby_gets_no_job_until_activated(start_worker: Any, sink: EventRecorder,
                                                   agent_name: str, lkapi: Any,
                                                   livekit_server: Any) -> None:
    """Beside an active worker, every job goes to the active one while the standby waits;
    after SIGUSR2 the standby reports ready (not standby) and LiveKit sees it available."""
    spare = await start_worker(entrypoint="wk_entrypoints:record_metadata", no_human_timeout_s=1,
                               extra_env={"VOICEOPS_STANDBY": "1"})
    parked = await sink.wait_for(Ready, READY_TIMEOUT_S, pid=spare.proc.pid)
    assert parked.standby is True
    if livekit_server.is_emulator:  # registered, and reporting itself full
        await wait_for_async(
            lambda: worker_status(livekit_server, parked.worker_id) == "WS_FULL", 20.0,
            "the parked worker full", 0.2)
    active = await start_worker(entrypoint="wk_entrypoints:record_metadata", no_human_timeout_s=1)
    await sink.wait_for(Ready, READY_TIMEOUT_S, pid=active.proc.pid, standby=False)

    before = await dispatch_round(lkapi, sink, agent_name, ROUNDS)
    assert {r.pid for r in before} == {active.proc.pid}

    spare.signal(signal.SIGUSR2)
    woken = await sink.wait_for(Ready, READY_TIMEOUT_S, after=parked, pid=spare.proc.pid)
    assert woken.standby is False and woken.worker_id == parked.worker_id
    if livekit_server.is_emulator:  # the server now sees it as available
        await wait_for_async(
            lambda: worker_status(livekit_server, parked.worker_id) == "WS_AVAILABLE", 20.0,
            "the woken worker available", 0.2)
