"""Dispatches: the dispatch lifecycle with fake collaborators (alerts, LiveKit, facts) and an
injected clock — correlation, early replay, ListDispatch confirmation, deaths, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from dispatch_fakes import AGENT, Alerts, Clock, FakeLiveKit, make_dispatches
from prometheus_client import CollectorRegistry

from voiceops import config
from voiceops.events import AgentJoined, DispatchCreated, DispatchFailed, JobEnded, JobRequest
from voiceops.metrics import Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor.dispatches import Dispatches
from voiceops.monitor.heartbeat import ProbeOutcome, ProbeResult
from voiceops.monitor.monitor import Monitor, MonitorOptions
from voiceops.supervisor.policy import ExitReason


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture
def livekit() -> FakeLiveKit:
    return FakeLiveKit()


@pytest.fixture
def d(clock: Clock, alerts: Alerts, livekit: FakeLiveKit) -> Dispatches:
    return make_dispatches(clock, alerts, livekit)


@contextlib.asynccontextmanager
async def running(d: Dispatches) -> AsyncIterator[Dispatches]:
    """``run`` in the background (ticks are driven by the test: tick_s is an hour)."""
    task = asyncio.create_task(d.run(tick_s=3600.0))
    await asyncio.sleep(0)  # the task's first step sets up its task group
    assert d.running
    try:
        yield d
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not d.running


def value(d: Dispatches, name: str, **labels: str) -> float | None:
    return d._m.registry.get_sample_value(name, {"agent_name": AGENT, **labels})


def created(did: str, room: str = "r1", **kw: object) -> DispatchCreated:
    return DispatchCreated(dispatch_id=did, room=room, agent_name=AGENT, latency_s=0.02, **kw)


def test_created_job_request_joined_observe_each_histogram_once(d: Dispatches,
                                                                 clock: Clock) -> None:
    """created → job_request → join (worker, then the webhook's duplicate) is one sample each."""
    d.on_event(created("AD_1"))
    clock.now += 0.3
    d.on_event(JobRequest(job_id="AJ_1", dispatch_id="AD_1", room="r1", agent_name=AGENT))
    clock.now += 1.2
    d.on_event(AgentJoined(job_id="AJ_1", dispatch_id="AD_1", room="r1"))
    d.on_event(AgentJoined(room="r1", identity="agent-AJ_1", source="webhook"))
    assert value(d, "voiceops_dispatch_requests_total", outcome="ok") == 1
    assert value(d, "voiceops_dispatch_latency_seconds_count") == 1
    assert value(d, "voiceops_dispatch_job_request_seconds_sum") == pytest.approx(0.3)
    assert value(d, "voiceops_time_to_join_seconds_sum") == pytest.approx(1.5)
    assert value(d, "voiceops_time_to_join_seconds_count") == 1
    assert d.timeline("AD_1")["phase"] == "joined"


def test_worker_events_before_the_dispatch_are_replayed_once(d: Dispatches,
                                                             clock: Clock) -> None:
    """A JobRequest and join that beat dispatch_created count when it arrives, at 0 s."""
    d.on_event(JobRequest(job_id="AJ_2", dispatch_id="AD_2", room="r2", agent_name=AGENT))
    d.on_event(AgentJoined(job_id="AJ_2", dispatch_id="AD_2", room="r2"))
    assert d.timeline("AD_2") is None and len(d.early) == 1
    clock.now += 0.05
    d.on_event(created("AD_2", "r2"))
    assert len(d.early) == 0
    assert value(d, "voiceops_dispatch_job_request_seconds_count") == 1
    assert d.timeline("AD_2") == {**d.timeline("AD_2"), "phase": "joined",
                                  "job_request_after_s": 0, "joined_after_s": 0}


def test_reused_failed_and_probe_dispatches(d: Dispatches) -> None:
    """reused counts but is not tracked again; failures count by reason, an unknown reason is
    dropped; heartbeat dispatch events are not proxy traffic."""
    d.on_event(created("AD_3", reused=True))
    d.on_event(DispatchFailed(room="r", agent_name=AGENT, reason="rate_limited"))
    d.on_event(DispatchFailed(room="r", agent_name=AGENT, reason="weird"))
    d.on_event(created("AD_p", "voiceops-probe-h-1", source="heartbeat"))
    assert value(d, "voiceops_dispatch_requests_total", outcome="reused") == 1
    assert value(d, "voiceops_dispatch_requests_total", outcome="rate_limited") == 1
    assert value(d, "voiceops_dispatch_requests_total", outcome="ok") == 0
    assert d._m.registry.get_sample_value("voiceops_events_dropped_total") == 1
    assert len(d.correlator) == 0


async def test_deadline_without_job_request_is_confirmed_then_alerted(
        d: Dispatches, clock: Clock, alerts: Alerts, livekit: FakeLiveKit) -> None:
    """Past the deadline, ListDispatch shows no job: counted, DispatchUnanswered names the
    dispatch, and the timeline carries the same diagnosis."""
    livekit.add("AD_4", "r4")
    async with running(d):
        d.on_event(created("AD_4", "r4"))
        clock.now += 10.0
        d.tick()
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
    diagnosis, labels = alerts.firing[A.DISPATCH_UNANSWERED]
    assert labels == {"room": "r4", "dispatch_id": "AD_4"}
    assert diagnosis.startswith("no JobRequest within 10 s: ")
    assert value(d, "voiceops_dispatch_unanswered_total", source="proxy") == 1
    assert d.timeline("AD_4")["diagnosis"] == diagnosis
    assert livekit.calls == ["list"]


async def test_a_job_listed_elsewhere_answers_the_dispatch(
        d: Dispatches, clock: Clock, alerts: Alerts, livekit: FakeLiveKit) -> None:
    """Another host's worker took it: no alert, and its job's join then counts."""
    livekit.add("AD_5", "r5", "AJ_far")
    async with running(d):
        d.on_event(created("AD_5", "r5"))
        clock.now += 10.0
        d.tick()
        await alerts.wait(lambda: ("resolve", A.DISPATCH_UNANSWERED) in alerts.calls)
    assert alerts.firing == {}
    assert value(d, "voiceops_dispatch_unanswered_total", source="proxy") == 0
    clock.now += 1.0
    d.on_event(AgentJoined(room="r5", identity="agent-AJ_far", source="webhook"))
    assert value(d, "voiceops_time_to_join_seconds_sum") == pytest.approx(11.0)


async def test_listdispatch_failure_counts_the_dispatch_unanswered(
        d: Dispatches, clock: Clock, alerts: Alerts, livekit: FakeLiveKit) -> None:
    """When LiveKit cannot confirm, the dispatch is unanswered (not silently dropped)."""
    livekit.fail_list = True
    async with running(d):
        d.on_event(created("AD_6", "r6"))
        clock.now += 10.0
        d.tick()
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
    assert value(d, "voiceops_dispatch_unanswered_total", source="proxy") == 1


async def test_redispatch_recreates_once_with_the_same_metadata(
        clock: Clock, alerts: Alerts, livekit: FakeLiveKit) -> None:
    """With redispatch on, an unanswered dispatch is deleted and re-created once, tracked anew."""
    d = make_dispatches(clock, alerts, livekit, redispatch=True)
    livekit.add("AD_7", "r7", metadata='{"letta_agent_id": "agent-1"}')
    async with running(d):
        d.on_event(created("AD_7", "r7"))
        clock.now += 10.0
        d.tick()
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
    assert livekit.calls == ["list", "delete AD_7",
                             f'create {AGENT} {{"letta_agent_id": "agent-1"}}']
    new_id = livekit.rooms["r7"][0].id
    assert f"re-dispatched once as {new_id}" in alerts.firing[A.DISPATCH_UNANSWERED][0]
    assert d.timeline(new_id)["redispatched"] is True


async def test_job_ending_before_its_join_alerts_no_join(
        d: Dispatches, alerts: Alerts) -> None:
    """connect_failed after the JobRequest: DispatchUnanswered with reason no_join, once."""
    async with running(d):
        d.on_event(created("AD_8", "r8"))
        d.on_event(JobRequest(job_id="AJ_8", dispatch_id="AD_8", room="r8", agent_name=AGENT))
        ended = JobEnded(job_id="AJ_8", dispatch_id="AD_8", room="r8", outcome="connect_failed")
        d.on_event(ended)
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
        d.on_event(ended)
    diagnosis, labels = alerts.firing[A.DISPATCH_UNANSWERED]
    assert labels["reason"] == "no_join" and "ended 'connect_failed'" in diagnosis
    assert alerts.calls.count(("fire", A.DISPATCH_UNANSWERED)) == 1
    assert d.joins_missing_recently()


async def test_no_join_by_the_join_timeout_alerts(d: Dispatches, clock: Clock,
                                                  alerts: Alerts) -> None:
    """A JobRequest whose agent never joins ends as an alert when the join timeout passes."""
    async with running(d):
        d.on_event(created("AD_9", "r9"))
        d.on_event(JobRequest(job_id="AJ_9", dispatch_id="AD_9", room="r9", agent_name=AGENT))
        clock.now += 120.0
        d.tick()
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
    assert "no agent joined within 120 s" in alerts.firing[A.DISPATCH_UNANSWERED][0]


async def test_a_worker_death_ends_its_joining_dispatches_at_once(
        d: Dispatches, alerts: Alerts) -> None:
    """An unrequested death: held jobs are handed back, the joining dispatch is unanswered."""
    async with running(d):
        d.on_event(created("AD_10", "r10"))
        d.on_event(JobRequest(job_id="AJ_10", dispatch_id="AD_10", room="r10",
                              agent_name=AGENT, process="worker-0"))
        held = d.process_died("worker-0", ExitReason("crash", returncode=-9))
        await alerts.wait(lambda: A.DISPATCH_UNANSWERED in alerts.firing)
    assert held is not None and len(held.joining) == 1 and not held.live
    diagnosis, labels = alerts.firing[A.DISPATCH_UNANSWERED]
    assert labels["reason"] == "worker_died" and "worker-0 died (SIGKILL)" in diagnosis
    assert value(d, "voiceops_dispatch_unanswered_total", source="proxy") == 1


def test_a_requested_stop_ends_nothing(d: Dispatches, alerts: Alerts) -> None:
    """A stop the operator asked for hands back nothing and alerts nothing."""
    d.on_event(created("AD_11", "r11"))
    d.on_event(JobRequest(job_id="AJ_11", dispatch_id="AD_11", room="r11", agent_name=AGENT,
                          process="worker-0"))
    assert d.process_died("worker-0", ExitReason("manual")) is None
    assert alerts.firing == {}


def test_nothing_is_spawned_before_run(d: Dispatches, alerts: Alerts) -> None:
    """Before run (or after it), a join failure starts no task (and leaves none unawaited)."""
    d.on_event(created("AD_12", "r12"))
    d.on_event(JobRequest(job_id="AJ_12", dispatch_id="AD_12", room="r12", agent_name=AGENT))
    d.on_event(JobEnded(job_id="AJ_12", dispatch_id="AD_12", room="r12", outcome="failed"))
    d.tick()
    assert alerts.firing == {} and d.timeline("AD_12")["phase"] == "requested"


def test_probe_outcomes_feed_the_same_histograms(d: Dispatches, alerts: Alerts) -> None:
    """A probe's JobRequest and join times are observed; no JobRequest counts as heartbeat."""
    d.probe_observed(ProbeOutcome(ProbeResult.NO_JOB_REQUEST, "voiceops-probe-h-1", "AD_p1"))
    d.probe_observed(ProbeOutcome(ProbeResult.OK, "voiceops-probe-h-2", "AD_p2",
                                  job_request_s=0.05, join_s=0.7))
    assert value(d, "voiceops_dispatch_unanswered_total", source="heartbeat") == 1
    assert value(d, "voiceops_dispatch_job_request_seconds_sum") == pytest.approx(0.05)
    assert value(d, "voiceops_time_to_join_seconds_sum") == pytest.approx(0.7)
    assert alerts.calls == [("resolve", A.DISPATCH_UNANSWERED)]


def test_a_replayed_early_job_request_is_counted_once_by_the_monitor(clock: Clock) -> None:
    """The monitor replays an early JobRequest inside Dispatches only: job_requests_total (the
    recorder's) counts it once, not again on the replay."""
    mon = Monitor(config.from_dict({"agent": {"name": AGENT}}),
                  config.Secrets(livekit_api_secret="s"), Metrics(AGENT, CollectorRegistry()),
                  status_provider=dict, clock=clock, options=MonitorOptions(host="h"))
    mon.on_event(JobRequest(job_id="AJ_13", dispatch_id="AD_13", room="r13", agent_name=AGENT))
    mon.on_event(created("AD_13", "r13"))
    get = mon.metrics.registry.get_sample_value
    assert get("voiceops_job_requests_total", {"agent_name": AGENT, "decision": "accepted"}) == 1
    assert get("voiceops_dispatch_job_request_seconds_count", {"agent_name": AGENT}) == 1
