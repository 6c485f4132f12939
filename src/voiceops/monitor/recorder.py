"""Feeds :class:`Metrics` from child events (job counters, active jobs, voice, Letta errors).

Labels stay bounded: the ``agent_name`` label is always the configured agent (the one name
voiceops dispatches), and an outcome/decision/metric outside its enum is counted in
``voiceops_events_dropped_total`` instead of creating a series. Dispatch metrics (requests,
latency, JobRequest, join, unanswered) are written by ``monitor/dispatches.py`` alone.
"""

from __future__ import annotations

import logging
import math

from voiceops.events import (
    Event,
    JobEnded,
    JobRequest,
    Jobs,
    LettaError,
    VoiceCount,
    VoiceMetric,
)
from voiceops.metrics import (
    CALL_CUT_REASONS,
    JOB_OUTCOMES,
    JOB_REQUEST_DECISIONS,
    LETTA_ERROR_KINDS,
    VOICE_METRICS,
    Metrics,
)
from voiceops.monitor.calls import Held

logger = logging.getLogger("voiceops.monitor.recorder")


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
            JobRequest: self._job_request,
            JobEnded: self._job_ended,
            Jobs: self._jobs,
            VoiceMetric: self._voice_metric,
            VoiceCount: self._voice_count,
            LettaError: self._letta_error,
        }.get(type(event))
        if handler is not None:
            handler(event)  # type: ignore[operator]

    def _drop(self, kind: str, value: object) -> None:
        logger.debug("event_dropped type=%s value=%.40r", kind, value)
        self.metrics.events_dropped.inc()

    def _job_request(self, ev: JobRequest) -> None:
        decision = "probe" if ev.probe else ev.decision
        if decision not in JOB_REQUEST_DECISIONS:
            self._drop("job_request", decision)
            return
        self.metrics.job_requests.labels(self._agent, decision).inc()

    def _job_ended(self, ev: JobEnded) -> None:
        if ev.outcome not in JOB_OUTCOMES:
            self._drop("job_ended", ev.outcome)
            return
        self.metrics.jobs.labels(self._agent, ev.outcome).inc()
        if ev.outcome == "cut":
            reason = ev.reason if ev.reason in CALL_CUT_REASONS else "disconnected"
            self.metrics.calls_cut.labels(reason).inc()
            logger.warning("call_cut job_id=%s reason=%s process=%s", ev.job_id, reason,
                           ev.process)

    def jobs_cut(self, held: Held, kind: str) -> None:
        """A worker died holding these jobs: each ended cut; its live calls were cut by it."""
        self.metrics.jobs.labels(self._agent, "cut").inc(len(held.live) + len(held.joining))
        if kind != "drain_timeout":  # the drain kill counted its own cuts
            self.metrics.calls_cut.labels("worker_died").inc(len(held.live))

    def _jobs(self, ev: Jobs) -> None:
        if ev.active_jobs < 0 or not ev.process:
            self._drop("jobs", ev.active_jobs)
            return
        self._active[ev.process] = ev.active_jobs
        self._publish_active()

    def _voice_metric(self, ev: VoiceMetric) -> None:
        if ev.metric not in VOICE_METRICS or not _seconds_ok(ev.value_s):
            self._drop("voice_metric", ev.metric)
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
            self._drop("voice_count", ev.what)

    def _letta_error(self, ev: LettaError) -> None:
        if ev.kind not in LETTA_ERROR_KINDS:
            self._drop("letta_error", ev.kind)
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
