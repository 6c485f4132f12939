"""Diagnoses point at evidence that tells the failure apart: each piece of evidence a
diagnosis names is absent in a healthy run, and present when the failure is real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from monitor_helpers import monitor_config, spawn_voiceops_worker
from test_monitor_dispatch import WORKER_READY_S, agent, dispatch

from voiceops.monitor import alerts as A
from voiceops.monitor import diagnose
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process, pytest.mark.faults,
              pytest.mark.usefixtures("no_leaked_children")]

CHECKS = (diagnose.name_mismatch, diagnose.no_worker, diagnose.over_target_load,
          diagnose.all_full, diagnose.media_path, diagnose.nothing_sent)


async def test_evidence_is_absent_when_healthy_and_named_when_jobs_are_swallowed(
        livekit_server: Any, harness: Any, tmp_path: Path) -> None:
    """1. A healthy dispatch: LiveKit's ListDispatch shows its job, so no check finds its
    evidence (no worker, wrong name, load over 0.7, all full, no join, no job). 2. With
    JobRequests
    swallowed, DispatchUnanswered names the dispatch, LiveKit's record of it (no job) and the
    registered worker by name and LiveKit id, and no longer the log line every healthy room
    prints."""
    name = agent()
    h = await harness(monitor_config(livekit_server, agent_name=name, heartbeat=False))
    h.children.append(await spawn_voiceops_worker(livekit_server, name, tmp=tmp_path,
                                                  process="worker-0", events_path=h.socket.path))
    await wait_for_async(lambda: h.pool.status()["pool"]["ready"], WORKER_READY_S, "a ready worker")

    ok = await dispatch(livekit_server, name, "evidence-healthy")
    h.monitor.on_event(ok)
    await wait_for_async(lambda: h.monitor.dispatch_timeline(ok.dispatch_id)["job_request_after_s"]
                         is not None, 20, "the healthy JobRequest")
    entry = h.monitor.dispatches.correlator.get(ok.dispatch_id)

    async def listing_now() -> diagnose.Listing:
        answered, listed = await h.monitor.dispatches.listed(entry)
        return diagnose.Listing(entry.room, entry.dispatch_id, answered=answered,
                                found=listed is not None,
                                jobs=len(listed.state.jobs) if listed else 0)

    # The worker reports the JobRequest when the offer arrives; LiveKit lists the job only
    # once the worker has accepted it and the assignment is sent, a few ms later.
    listing = await wait_for_async(listing_now, 10, "the job in ListDispatch",
                                   done=lambda seen: seen.jobs >= 1)
    healthy = await h.monitor.facts(listing=listing)
    assert {c.__name__: c(healthy) for c in CHECKS} == {c.__name__: None for c in CHECKS}

    livekit_server.faults.set(swallow_job_requests=True)
    lost = await dispatch(livekit_server, name, "evidence-swallowed")
    h.monitor.on_event(lost)
    fired = await wait_for_async(lambda: h.alert(A.DISPATCH_UNANSWERED), 15, "DispatchUnanswered")
    text = fired["diagnosis"]
    worker_id = h.pool.processes["worker-0"]["worker_id"]
    assert f"shows dispatch {lost.dispatch_id} with no job" in text, text
    assert f"worker-0 ({worker_id})" in text, text
    assert "not dispatching agent job" not in text
