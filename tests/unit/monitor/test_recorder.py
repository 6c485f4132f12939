"""Recorder (and, for dispatch events, Dispatches — the monitor's two metric writers): events
become metric values; bad label values are dropped, never new series."""

from __future__ import annotations

import pytest
from dispatch_fakes import Alerts, Clock, FakeLiveKit, make_dispatches
from prometheus_client import CollectorRegistry

from voiceops.events import (
    DispatchCreated,
    DispatchFailed,
    Event,
    JobEnded,
    JobRequest,
    Jobs,
    VoiceCount,
    VoiceMetric,
)
from voiceops.metrics import Metrics
from voiceops.monitor.recorder import Recorder

A = "letta-voice-agent"


class Writers:
    """Events to both writers on one registry, as the monitor routes them."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.recorder = Recorder(metrics)
        self.dispatches = make_dispatches(Clock(), Alerts(), FakeLiveKit(), metrics=metrics)

    def on_event(self, event: Event) -> None:
        self.recorder.on_event(event)
        self.dispatches.on_event(event)

    def process_exited(self, name: str) -> None:
        self.recorder.process_exited(name)


@pytest.fixture
def rec() -> Writers:
    return Writers(Metrics(A, CollectorRegistry()))


def value(rec: Writers, name: str, **labels: str) -> float | None:
    return rec.metrics.registry.get_sample_value(name, labels)


def test_dispatch_outcomes_and_latency(rec: Writers) -> None:
    """ok, reused and failure reasons count under their outcome; latency is observed."""
    rec.on_event(DispatchCreated(dispatch_id="AD_1", room="r", agent_name=A, latency_s=0.03))
    rec.on_event(DispatchCreated(dispatch_id="AD_1", room="r", agent_name=A, latency_s=0.02,
                                 reused=True))
    rec.on_event(DispatchFailed(room="r", agent_name=A, reason="timeout"))
    rec.on_event(DispatchCreated(dispatch_id="AD_p", room="p", agent_name=A, latency_s=0.01,
                                 source="heartbeat"))
    n = "voiceops_dispatch_requests_total"
    assert value(rec, n, agent_name=A, outcome="ok") == 1
    assert value(rec, n, agent_name=A, outcome="reused") == 1
    assert value(rec, n, agent_name=A, outcome="timeout") == 1
    assert value(rec, "voiceops_dispatch_latency_seconds_count", agent_name=A) == 2
    assert value(rec, "voiceops_dispatch_latency_seconds_bucket", agent_name=A, le="0.025") == 1


def test_unknown_label_values_are_dropped(rec: Writers) -> None:
    """An unknown reason, decision, outcome or voice metric is counted as dropped."""
    rec.on_event(DispatchFailed(room="r", agent_name=A, reason="weird"))
    rec.on_event(JobRequest(job_id="j", dispatch_id="d", room="r", agent_name=A, decision="maybe"))
    rec.on_event(JobEnded(job_id="j", outcome="exploded"))
    rec.on_event(VoiceMetric(metric="mood", value_s=1.0))
    rec.on_event(VoiceMetric(metric="llm_ttft", value_s=float("nan")))
    assert value(rec, "voiceops_events_dropped_total") == 5
    assert value(rec, "voiceops_dispatch_requests_total", agent_name=A, outcome="weird") is None


def test_job_requests_jobs_and_voice(rec: Writers) -> None:
    """JobRequest decisions (probe flag wins), job outcomes and voice histograms are recorded."""
    rec.on_event(JobRequest(job_id="j1", dispatch_id="d", room="r", agent_name=A))
    rec.on_event(JobRequest(job_id="j2", dispatch_id="d", room="p", agent_name=A, probe=True,
                            decision="rejected"))
    rec.on_event(JobEnded(job_id="j1", outcome="connect_failed"))
    rec.on_event(VoiceMetric(metric="voice_response", value_s=0.8))
    assert value(rec, "voiceops_job_requests_total", agent_name=A, decision="accepted") == 1
    assert value(rec, "voiceops_job_requests_total", agent_name=A, decision="probe") == 1
    assert value(rec, "voiceops_job_requests_total", agent_name=A, decision="rejected") == 0
    assert value(rec, "voiceops_jobs_total", agent_name=A, outcome="connect_failed") == 1
    assert value(rec, "voiceops_voice_response_seconds_sum", agent_name=A) == pytest.approx(0.8)


def test_active_jobs_sum_over_processes_and_exit(rec: Writers) -> None:
    """jobs_active sums each process's last count; an exited process's count is dropped."""
    rec.on_event(Jobs(active_jobs=2, process="worker-0"))
    rec.on_event(Jobs(active_jobs=1, process="worker-1"))
    rec.on_event(Jobs(active_jobs=3, process="worker-0"))
    assert value(rec, "voiceops_jobs_active", agent_name=A) == 4
    rec.process_exited("worker-0")
    assert value(rec, "voiceops_jobs_active", agent_name=A) == 1
    rec.process_exited("worker-9")
    assert value(rec, "voiceops_jobs_active", agent_name=A) == 1


def test_voice_counts(rec: Writers) -> None:
    """Caller turns and interruptions count; anything else is dropped."""
    for ev in (VoiceCount(what="turn"), VoiceCount(what="turn"), VoiceCount(what="interruption"),
               VoiceCount(what="laugh")):
        rec.on_event(ev)
    assert value(rec, "voiceops_voice_turns_total", agent_name=A) == 2
    assert value(rec, "voiceops_voice_interruptions_total", agent_name=A) == 1
    assert value(rec, "voiceops_events_dropped_total") == 1
