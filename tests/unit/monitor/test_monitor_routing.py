"""Monitor event routing without LiveKit: correlation, probe separation, process exit, failed
Letta turns."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from voiceops import config, events
from voiceops.events import (
    AgentJoined,
    DispatchCreated,
    JobEnded,
    JobRequest,
    Jobs,
    LettaError,
    Ready,
)
from voiceops.metrics import Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor import lettacalls
from voiceops.monitor.heartbeat import ProbeOutcome, ProbeResult
from voiceops.monitor.monitor import Monitor, MonitorOptions

AGENT = "letta-voice-agent"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mon(clock: Clock) -> Monitor:
    cfg = config.from_dict({"agent": {"name": AGENT}})
    metrics = Metrics(AGENT, CollectorRegistry())
    return Monitor(cfg, config.Secrets(livekit_api_secret="s"), metrics,
                   status_provider=lambda: {"pool": {"desired": 1, "ready": 1}, "processes": []},
                   clock=clock, wall=lambda: 1_700_000_000.0, options=MonitorOptions(host="h"))


def value(mon: Monitor, name: str, **labels: str) -> float | None:
    return mon.metrics.registry.get_sample_value(name, labels)


def test_dispatch_job_request_and_join_feed_histograms(mon: Monitor, clock: Clock) -> None:
    """dispatch_created → job_request → agent_joined gives all three histograms one sample."""
    mon.on_event(DispatchCreated(dispatch_id="AD_1", room="r1", agent_name=AGENT, latency_s=0.02))
    clock.now += 0.3
    mon.on_event(JobRequest(job_id="AJ_1", dispatch_id="AD_1", room="r1", agent_name=AGENT))
    clock.now += 1.2
    mon.on_event(AgentJoined(job_id="AJ_1", dispatch_id="AD_1", room="r1"))
    mon.on_event(AgentJoined(room="r1", identity="agent-AJ_1", source="webhook"))
    assert value(mon, "voiceops_dispatch_latency_seconds_count", agent_name=AGENT) == 1
    assert value(mon, "voiceops_dispatch_job_request_seconds_sum", agent_name=AGENT) == \
        pytest.approx(0.3)
    assert value(mon, "voiceops_time_to_join_seconds_count", agent_name=AGENT) == 1
    assert value(mon, "voiceops_time_to_join_seconds_sum", agent_name=AGENT) == pytest.approx(1.5)


def test_job_request_before_dispatch_created_is_correlated(mon: Monitor, clock: Clock) -> None:
    """LiveKit may ask the worker before it answers the proxy: the early JobRequest still counts."""
    mon.on_event(JobRequest(job_id="AJ_2", dispatch_id="AD_2", room="r2", agent_name=AGENT))
    clock.now += 0.01
    mon.on_event(DispatchCreated(dispatch_id="AD_2", room="r2", agent_name=AGENT, latency_s=0.02))
    clock.now += 0.5
    mon.on_event(AgentJoined(job_id="AJ_2", dispatch_id="AD_2", room="r2"))
    assert value(mon, "voiceops_dispatch_job_request_seconds_count", agent_name=AGENT) == 1
    timeline = mon.dispatch_timeline("AD_2")
    assert timeline is not None and timeline["job_request_after_s"] == 0
    assert timeline["joined_after_s"] == pytest.approx(0.5)


def test_early_events_of_unknown_dispatches_expire(mon: Monitor, clock: Clock) -> None:
    """Held events of a dispatch that never appears (another host's) are dropped after a while."""
    mon.on_event(JobRequest(job_id="AJ_3", dispatch_id="AD_3", room="r3", agent_name=AGENT))
    clock.now += 60
    mon.on_event(JobRequest(job_id="AJ_4", dispatch_id="AD_4", room="r4", agent_name=AGENT))
    assert len(mon.dispatches.early) == 1 and mon.dispatches.early.expired == 1


def test_probe_traffic_is_not_proxy_traffic(mon: Monitor) -> None:
    """A JobRequest for a probe room (ours or another host's) is never a proxy dispatch's."""
    mon.on_event(JobRequest(job_id="AJ_p", dispatch_id="AD_p", room="voiceops-probe-other-1",
                            agent_name=AGENT, probe=True, decision="probe"))
    assert value(mon, "voiceops_dispatch_job_request_seconds_count", agent_name=AGENT) == 0
    assert value(mon, "voiceops_job_requests_total", agent_name=AGENT, decision="probe") == 1
    assert len(mon.dispatches.correlator) == 0


def test_process_exit_forgets_port_and_jobs(mon: Monitor) -> None:
    """process_exited drops the worker's health port and its active jobs."""
    mon.on_event(Ready(process="worker-0", worker_id="AW_1", agent_name=AGENT, http_port=8123))
    mon.on_event(Jobs(process="worker-0", active_jobs=2))
    assert mon.worker_ports == {"worker-0": 8123}
    assert value(mon, "voiceops_jobs_active", agent_name=AGENT) == 2
    mon.process_exited("worker-0")
    assert mon.worker_ports == {}
    assert value(mon, "voiceops_jobs_active", agent_name=AGENT) == 0


async def test_probe_outcomes_drive_heartbeat_alert(mon: Monitor) -> None:
    """Two failed probes fire HeartbeatFailed with a diagnosis; an ok probe resolves it."""
    fail = ProbeOutcome(ProbeResult.NO_JOB_REQUEST, "voiceops-probe-h-1", "AD_x")
    await mon.probing.apply_probe(fail)
    assert not mon.book.is_firing(A.HEARTBEAT_FAILED)
    await mon.probing.apply_probe(fail)
    alert = mon.alerts()[0]
    assert alert["alert"] == A.HEARTBEAT_FAILED
    assert "LiveKit sent no JobRequest" in alert["diagnosis"]
    assert value(mon, "voiceops_dispatch_unanswered_total", agent_name=AGENT,
                 source="heartbeat") == 2
    await mon.probing.apply_probe(ProbeOutcome(ProbeResult.OK, "voiceops-probe-h-3", "AD_y",
                                       job_request_s=0.05))
    assert mon.alerts() == []
    assert value(mon, "voiceops_heartbeat_last_success_timestamp_seconds") == 1_700_000_000.0
    assert value(mon, "voiceops_heartbeat_probes_total", result="no_job_request") == 2


async def test_job_ending_before_the_join_fires_dispatch_unanswered(clock: Clock) -> None:
    """A JobRequest whose job ends connect_failed is an alert naming the dispatch, not silence."""
    import asyncio

    cfg = config.from_dict({"agent": {"name": AGENT}, "heartbeat": {"enabled": False},
                            "livekit": {"url": "ws://127.0.0.1:9"}})
    mon = Monitor(cfg, config.Secrets(livekit_api_secret="s"), Metrics(AGENT, CollectorRegistry()),
                  status_provider=lambda: {"pool": {"desired": 1, "ready": 1}, "processes": []},
                  options=MonitorOptions(host="h", livekit_check_interval_s=3600))
    await mon.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while mon.tg is None and loop.time() < deadline:
            await asyncio.sleep(0.01)  # the monitor's task group comes up on its first step
        mon.on_event(
            DispatchCreated(dispatch_id="AD_5", room="r5", agent_name=AGENT, latency_s=0.0)
        )
        mon.on_event(JobRequest(job_id="AJ_5", dispatch_id="AD_5", room="r5", agent_name=AGENT))
        mon.on_event(JobEnded(job_id="AJ_5", dispatch_id="AD_5", room="r5",
                              outcome="connect_failed"))
        deadline = loop.time() + 10
        while not mon.alerts() and loop.time() < deadline:
            await asyncio.sleep(0.01)  # poll interval for the alert task
        (alert,) = mon.alerts()
        assert alert["alert"] == A.DISPATCH_UNANSWERED and "AD_5" in alert["diagnosis"]
        assert "connect_failed" in alert["diagnosis"] and alert["labels"]["reason"] == "no_join"
        mon.on_event(JobEnded(job_id="AJ_5", dispatch_id="AD_5", room="r5",
                              outcome="connect_failed"))
        assert mon.dispatches.correlator.get("AD_5").phase == "unanswered"  # handled once
    finally:
        await mon.aclose()


# ---- failed Letta turns (letta_error events) -----------------------------------------

def errors(mon: Monitor, kind: str) -> float | None:
    return mon.metrics.registry.get_sample_value("voiceops_letta_errors_total",
                                                 {"agent_name": AGENT, "kind": kind})


def firing(mon: Monitor) -> list[str]:
    return [a["alert"] for a in mon.alerts()]


def test_letta_error_series_exist_at_zero_and_count_by_kind(mon: Monitor) -> None:
    """Every kind is exported at 0 before the first failure; each event adds one."""
    assert [errors(mon, k) for k in ("error", "timeout", "dropped")] == [0, 0, 0]
    mon.on_event(LettaError(kind="timeout", letta_agent_id="agent-x", latency_s=8.0))
    assert errors(mon, "timeout") == 1 and errors(mon, "error") == 0


def test_an_unknown_kind_is_dropped_not_a_new_series(mon: Monitor) -> None:
    """A bad kind label from a child goes to voiceops_events_dropped_total."""
    mon.on_event(LettaError(kind="weird"))
    assert errors(mon, "weird") is None
    assert mon.metrics.registry.get_sample_value("voiceops_events_dropped_total") == 1


def test_two_failed_turns_in_the_window_fire_letta_unreachable_then_it_ages_out(
        mon: Monitor, clock: Clock) -> None:
    """One failure is a blip; a second within 60 s fires with a diagnosis naming the kind;
    once both are older than the window, the next tick resolves it."""
    mon.on_event(LettaError(kind="error", detail="HTTP 503"))
    assert A.LETTA_UNREACHABLE not in firing(mon)
    clock.now += 30
    mon.on_event(LettaError(kind="dropped", detail="RemoteProtocolError"))
    alert = next(a for a in mon.alerts() if a["alert"] == A.LETTA_UNREACHABLE)
    assert "2 call turns" in alert["diagnosis"] and "dropped" in alert["diagnosis"]
    clock.now += 61
    mon.letta.verdict()
    assert A.LETTA_UNREACHABLE not in firing(mon)


def test_failures_far_apart_never_fire(mon: Monitor, clock: Clock) -> None:
    """Two failures more than the window apart are two blips."""
    mon.on_event(LettaError(kind="timeout"))
    clock.now += 61
    mon.on_event(LettaError(kind="timeout"))
    assert A.LETTA_UNREACHABLE not in firing(mon)


def test_call_failures_policy_prunes_and_thresholds() -> None:
    """record keeps only failures inside the window; firing needs FAILURES_TO_FIRE of them."""
    s = lettacalls.record(lettacalls.CallFailures(), 0.0, "error", "HTTP 500", 10)
    s = lettacalls.record(s, 5.0, "timeout", "", 10)
    assert lettacalls.firing(s, 6.0, 10) and not lettacalls.firing(s, 10.5, 10)
    assert lettacalls.record(s, 100.0, "error", "", 10).times == (100.0,)


def test_letta_error_round_trips_on_the_wire() -> None:
    """letta_error is a registered event type: encode → decode gives it back."""
    ev = LettaError(kind="dropped", letta_agent_id="agent-1", latency_s=1.5, detail="ReadError")
    back = events.decode(events.encode(ev))
    assert isinstance(back, LettaError) and back.kind == "dropped" and back.latency_s == 1.5


def test_replayed_agent_join_does_not_answer_a_dispatch_without_job_request(
        mon: Monitor, clock: Clock) -> None:
    """A (replayed) webhook join of an old job in the room leaves the new dispatch unanswered;
    the real join of its own job, after its JobRequest, is the one that counts."""
    mon.on_event(DispatchCreated(dispatch_id="AD_9", room="r9", agent_name=AGENT, latency_s=0.01))
    clock.now += 0.5
    mon.on_event(AgentJoined(room="r9", identity="agent-AJ_old", source="webhook",
                             dispatch_id="AD_9"))
    timeline = mon.dispatch_timeline("AD_9")
    assert timeline is not None and timeline["phase"] == "waiting"
    assert timeline["joined_after_s"] is None
    assert value(mon, "voiceops_time_to_join_seconds_count", agent_name=AGENT) == 0
    mon.on_event(AgentJoined(room="r9", identity="agent-AJ_new", source="webhook"))
    clock.now += 0.5
    mon.on_event(JobRequest(job_id="AJ_new", dispatch_id="AD_9", room="r9", agent_name=AGENT))
    assert mon.dispatch_timeline("AD_9")["joined_after_s"] == pytest.approx(1.0)
