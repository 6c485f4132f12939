"""A stop or drain the operator asked for is not an incident: NoReadyWorkers and
HeartbeatFailed stay quiet through it (issue 11 item 9), and fire again once it is over."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from voiceops import config
from voiceops.metrics import Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor.heartbeat import ProbeOutcome, ProbeResult
from voiceops.monitor.monitor import Monitor, MonitorOptions
from voiceops.monitor.poolcheck import planned_outage

AGENT = "letta-voice-agent"


def worker(name: str, state: str, stop_reason: str | None = None) -> dict[str, Any]:
    return {"name": name, "kind": "worker", "state": state, "stop_reason": stop_reason}


def status(state: str, *workers: dict[str, Any]) -> dict[str, Any]:
    ready = sum(w["state"] == "ready" for w in workers)
    return {"state": state, "pool": {"desired": len(workers), "ready": ready},
            "processes": list(workers)}


def test_planned_outage_names_the_stop_or_the_requested_drain() -> None:
    """Stopping, or every worker draining on request, is planned; a crash is not."""
    assert planned_outage(status("stopping", worker("worker-0", "draining", "shutdown")))
    drained = planned_outage(status("running", worker("worker-0", "draining", "manual"),
                                    worker("worker-1", "starting")))
    assert drained == "worker-0 draining on request"
    assert planned_outage(status("running", worker("worker-0", "backoff"))) is None
    assert planned_outage(status("running", worker("worker-0", "draining", "rss"))) is None
    assert planned_outage(status("running", worker("worker-0", "ready"))) is None


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> dict[str, Any]:
    return {"status": status("stopping", worker("worker-0", "draining", "shutdown"),
                             worker("worker-1", "draining", "shutdown"))}


@pytest.fixture
def mon(world: dict[str, Any]) -> Monitor:
    cfg = config.from_dict({"agent": {"name": AGENT}})
    return Monitor(cfg, config.Secrets(livekit_api_secret="s"), Metrics(AGENT, CollectorRegistry()),
                   status_provider=lambda: world["status"], clock=Clock(),
                   wall=lambda: 1_700_000_000.0,
                   options=MonitorOptions(host="h", no_ready_grace_s=0.0))


async def test_no_ready_workers_stays_quiet_during_a_requested_stop(
        mon: Monitor, world: dict[str, Any]) -> None:
    """Zero ready workers while the supervisor stops fires nothing; the same pool while
    running (workers crashed) fires NoReadyWorkers."""
    await mon._check_pool()
    assert not mon.book.is_firing(A.NO_READY_WORKERS)
    world["status"] = status("running", worker("worker-0", "backoff"))
    await mon._check_pool()
    assert mon.book.is_firing(A.NO_READY_WORKERS)


async def test_failed_probes_during_a_requested_stop_do_not_fire_heartbeat_failed(
        mon: Monitor, world: dict[str, Any]) -> None:
    """Two unanswered probes overlapping a stop are not counted; the same two while running
    fire HeartbeatFailed."""
    miss = ProbeOutcome(ProbeResult.NO_JOB_REQUEST, "voiceops-probe-h-1", "AD_1")
    await mon.probing.apply_probe(miss)
    await mon.probing.apply_probe(miss)
    assert not mon.book.is_firing(A.HEARTBEAT_FAILED)
    assert mon.probing.hb_state.consecutive_failures == 0
    world["status"] = status("running", worker("worker-0", "backoff"))
    await mon.probing.apply_probe(miss)
    await mon.probing.apply_probe(miss)
    assert mon.book.is_firing(A.HEARTBEAT_FAILED)
