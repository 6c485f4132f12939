"""Feeds :class:`Metrics` from child events (counters, latency, active jobs, voice histograms).

Labels stay bounded: the ``agent_name`` label is always the configured agent (the one name
voiceops dispatches), and an outcome/decision/metric outside its enum is counted in
``voiceops_events_dropped_total`` instead of creating a series. Correlation histograms
(JobRequest, join) are the monitor's business, not this module's.
"""

from __future__ import annotations

import logging
import math

from voiceops.events import (
    DispatchCreated,
    DispatchFailed,
    Event,
    JobEnded,
    JobRequest,
    Jobs,
    VoiceCount,
    LettaError,
    VoiceMetric,
)
from voiceops.metrics import (
    CALL_CUT_REASONS,
    DISPATCH_OUTCOMES,
    JOB_OUTCOMES,
    JOB_REQUEST_DECISIONS,
    LETTA_ERROR_KINDS,
    VOICE_METRICS,
    Metrics,
)

logger = logging.getLogger("voiceops.monitor")

HEARTBEAT_SOURCE = "heartbeat"


def _seconds_ok(value: float) -> bool:
    return math.isfinite(value) and value >= 0


class Recorder:
    """An EventSink for the plain metrics; ``process_exited`` forgets a process's job count."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._agent = metrics.agent_name
        self._active: dict[str, int] = {}  # process name -> its last reported active jobs

    def on_event(self, event: Event) -> None:
        handler = {
            DispatchCreated: self._dispatch_created,
            DispatchFailed: self._dispatch_failed,
            JobRequest: self._job_request,
            JobEnded: self._job_ended,
            Jobs: self._jobs,
            VoiceMetric: self._voice_metric,
            VoiceCount: self._voice_count,
            LettaError: self._letta_error,
        }.get(type(event))
        if handler is not None:
            handler(event)  # type: ignore[operator]

    def _drop(self, what: str) -> None:
        logger.debug("event dropped: %s", what)
        self.metrics.events_dropped.inc()

    def _dispatch_created(self, ev: DispatchCreated) -> None:
        if ev.source == HEARTBEAT_SOURCE:
            return  # probes have their own metric
        outcome = "reused" if ev.reused else "ok"
        self.metrics.dispatch_requests.labels(self._agent, outcome).inc()
        if _seconds_ok(ev.latency_s):
            self.metrics.dispatch_latency.labels(self._agent).observe(ev.latency_s)

    def _dispatch_failed(self, ev: DispatchFailed) -> None:
        if ev.source == HEARTBEAT_SOURCE:
            return
        if ev.reason not in DISPATCH_OUTCOMES or ev.reason in ("ok", "reused"):
            self._drop(f"dispatch_failed reason {ev.reason!r}")
            return
        self.metrics.dispatch_requests.labels(self._agent, ev.reason).inc()

    def _job_request(self, ev: JobRequest) -> None:
        decision = "probe" if ev.probe else ev.decision
        if decision not in JOB_REQUEST_DECISIONS:
            self._drop(f"job_request decision {decision!r}")
            return
        self.metrics.job_requests.labels(self._agent, decision).inc()

    def _job_ended(self, ev: JobEnded) -> None:
        if ev.outcome not in JOB_OUTCOMES:
            self._drop(f"job_ended outcome {ev.outcome!r}")
            return
        self.metrics.jobs.labels(self._agent, ev.outcome).inc()
        if ev.outcome == "cut":
            reason = ev.reason if ev.reason in CALL_CUT_REASONS else "disconnected"
            self.metrics.calls_cut.labels(reason).inc()
            logger.warning("call_cut job_id=%s reason=%s process=%s", ev.job_id, reason,
                           ev.process)

    def _jobs(self, ev: Jobs) -> None:
        if ev.active_jobs < 0 or not ev.process:
            self._drop("jobs event without a process or with a negative count")
            return
        self._active[ev.process] = ev.active_jobs
        self._publish_active()

    def _voice_metric(self, ev: VoiceMetric) -> None:
        if ev.metric not in VOICE_METRICS or not _seconds_ok(ev.value_s):
            self._drop(f"voice_metric {ev.metric!r}")
            return
        self.metrics.voice[ev.metric].labels(self._agent).observe(ev.value_s)

    def _voice_count(self, ev: VoiceCount) -> None:
        """Caller turns and interruptions (apologies are ``letta_error`` events)."""
        m, a = self.metrics, self._agent
        if ev.what == "turn":
            m.voice_turns.labels(a).inc()
        elif ev.what == "interruption":
            m.voice_interruptions.labels(a).inc()
        else:
            self._drop(f"voice_count {ev.what!r}")
    def _letta_error(self, ev: LettaError) -> None:
        if ev.kind not in LETTA_ERROR_KINDS:
            self._drop(f"letta_error kind {ev.kind!r}")
            return
        self.metrics.letta_errors.labels(self._agent, ev.kind).inc()

    def process_exited(self, name: str) -> None:
        """The supervisor saw ``name`` exit: its jobs are gone with it."""
        if self._active.pop(name, None) is not None:
            self._publish_active()

    def active_jobs(self) -> dict[str, int]:
        return dict(self._active)

    def _publish_active(self) -> None:
        self.metrics.jobs_active.labels(self._agent).set(sum(self._active.values()))
