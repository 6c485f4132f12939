"""Every voiceops metric, in the supervisor's one registry (the supervisor and the monitor both
import it; it imports neither).

The names are a contract (DESIGN.md "Metrics"): dashboards, rules and users depend on them.
Labels are bounded enums only — never a room name or a dispatch id. Label children are
created up front so error series exist at zero before the first error.
"""

from __future__ import annotations

import contextlib
import platform
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from voiceops import __version__

DISPATCH_BUCKETS_S: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOIN_BUCKETS_S: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0)

DISPATCH_OUTCOMES: Final = ("ok", "reused", "bad_request", "unauthorized", "rate_limited",
                            "livekit_error", "timeout")
UNANSWERED_SOURCES: Final = ("proxy", "heartbeat")
JOB_REQUEST_DECISIONS: Final = ("accepted", "rejected", "probe")
# cut: the agent left its call for a reason other than the call ending (see CALL_CUT_REASONS)
JOB_OUTCOMES: Final = ("success", "failed", "cancelled", "connect_failed", "cut")
# impersonated: a participant took the agent's identity; removed: RemoveParticipant;
# disconnected: the agent lost the room otherwise; worker_died: its worker exited under it;
# drain_timeout: a drain ran out of time.
CALL_CUT_REASONS: Final = ("impersonated", "removed", "disconnected", "worker_died",
                           "drain_timeout")
# no_join: heartbeat.mode = "join" probes whose JobRequest came but whose agent never joined
PROBE_RESULTS: Final = ("ok", "no_job_request", "no_join", "dispatch_error")
ALERTS: Final = ("DispatchUnanswered", "HeartbeatFailed", "NoReadyWorkers", "WorkerCrashLoop",
                 "LiveKitUnreachable", "LettaUnreachable")
PROCESS_STATES: Final = ("starting", "ready", "draining", "stopping", "exited", "backoff", "parked")
RESTART_REASONS: Final = ("crash", "signal", "oom", "rss", "start_timeout", "drain_timeout",
                          "manual", "reload", "scale", "config")
VOICE_METRICS: Final = ("voice_response", "llm_ttft", "tts_ttfb", "stt_delay")
VOICE_COUNTS: Final = ("turn", "interruption")
LETTA_ERROR_KINDS: Final = ("error", "timeout", "dropped")


class Metrics:
    """The supervisor's metrics; pass one registry per instance (tests use a fresh one)."""

    def __init__(self, agent_name: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.agent_name = agent_name
        self._dispatch_metrics()
        self._heartbeat_metrics()
        self._process_metrics()
        self._voice_metrics()
        self._precreate()
        self._letta_metrics()

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry)

    def _histogram(self, name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, ("agent_name",), buckets=buckets, registry=self.registry)

    def _dispatch_metrics(self) -> None:
        a = ("agent_name",)
        self.dispatch_requests = self._counter(
            "voiceops_dispatch_requests_total", "Dispatch requests by outcome.", (*a, "outcome"))
        self.dispatch_latency = self._histogram(
            "voiceops_dispatch_latency_seconds", "Proxy request to LiveKit answered.",
            DISPATCH_BUCKETS_S)
        self.dispatch_job_request = self._histogram(
            "voiceops_dispatch_job_request_seconds", "Dispatch created to JobRequest received.",
            DISPATCH_BUCKETS_S)
        self.time_to_join = self._histogram(
            "voiceops_time_to_join_seconds",
            "Dispatch created to agent in the room.",
            JOIN_BUCKETS_S,
        )
        self.dispatch_unanswered = self._counter(
            "voiceops_dispatch_unanswered_total", "Dispatches with no JobRequest by the deadline.",
            (*a, "source"))
        self.job_requests = self._counter(
            "voiceops_job_requests_total", "JobRequests received by our workers.", (*a, "decision"))
        self.jobs = self._counter("voiceops_jobs_total", "Jobs ended, by outcome.", (*a, "outcome"))
        self.jobs_active = self._gauge("voiceops_jobs_active", "Jobs running now.", a)

    def _heartbeat_metrics(self) -> None:
        self.heartbeat_probes = self._counter(
            "voiceops_heartbeat_probes_total", "Heartbeat probe dispatches by result.", ("result",))
        self.heartbeat_last_success = self._gauge(
            "voiceops_heartbeat_last_success_timestamp_seconds",
            "Unix time of the last successful heartbeat probe.")
        self.alert_active = self._gauge(
            "voiceops_alert_active", "1 while the alert fires.", ("alert",)
        )
        self.alerts_fired = self._counter(
            "voiceops_alerts_fired_total", "Times each alert started firing.", ("alert",))

    def _process_metrics(self) -> None:
        p = ("process",)
        self.process_up = self._gauge("voiceops_process_up", "1 while the process runs.", p)
        self.process_state = self._gauge(
            "voiceops_process_state", "1 for the process's current state.", (*p, "state"))
        self.process_restarts = self._counter(
            "voiceops_process_restarts_total", "Restarts by reason.", (*p, "reason"))
        self.process_crashloop = self._gauge(
            "voiceops_process_crashloop", "1 while the process is parked after a crash loop.", p)
        self.process_pss = self._gauge(
            "voiceops_process_pss_bytes",
            "Proportional memory (PSS) of the process's whole tree: shared pages split.", p)
        self.process_cpu = self._counter(
            "voiceops_process_cpu_seconds_total", "CPU time of the process's whole tree.", p)
        self.pool_ready = self._gauge("voiceops_pool_ready_workers", "Workers READY.")
        self.pool_desired = self._gauge("voiceops_pool_desired_workers", "Workers wanted.")
        self.drain_killed_jobs = self._counter(
            "voiceops_drain_killed_jobs_total", "Jobs cut because a drain ran out of time.")
        self.orphans_killed = self._counter(
            "voiceops_orphans_killed_total", "Descendants left by an exited child, killed.")
        self.events_dropped = self._counter(
            "voiceops_events_dropped_total", "Child events that could not be decoded or applied.")
        self.events_refused = self._counter(
            "voiceops_events_refused_total",
            "Events refused because their sender is not in the claimed child's process tree.")
        self.calls_cut = self._counter(
            "voiceops_calls_cut_total", "Calls ended by anything but the call itself.",
            ("reason",))
        self.build_info = self._gauge(
            "voiceops_build_info", "voiceops build; always 1.", ("version", "python"))

    def _voice_metrics(self) -> None:
        docs = {
            "voice_response": "User stopped speaking to first agent audio.",
            "llm_ttft": "LLM time to first token.",
            "tts_ttfb": "TTS time to first byte.",
            "stt_delay": "STT delay after end of speech.",
        }
        self.voice: dict[str, Histogram] = {
            key: self._histogram(f"voiceops_{key}_seconds", doc, JOIN_BUCKETS_S)
            for key, doc in docs.items()
        }
        a = ("agent_name",)
        self.voice_turns = self._counter(
            "voiceops_voice_turns_total", "Caller turns the voice agent heard.", a)
        self.voice_interruptions = self._counter(
            "voiceops_voice_interruptions_total", "Agent replies the caller interrupted.", a)

    def _precreate(self) -> None:
        a = self.agent_name
        for outcome in DISPATCH_OUTCOMES:
            self.dispatch_requests.labels(a, outcome)
        for source in UNANSWERED_SOURCES:
            self.dispatch_unanswered.labels(a, source)
        for decision in JOB_REQUEST_DECISIONS:
            self.job_requests.labels(a, decision)
        for outcome in JOB_OUTCOMES:
            self.jobs.labels(a, outcome)
        for hist in (self.dispatch_latency, self.dispatch_job_request, self.time_to_join,
                     *self.voice.values()):
            hist.labels(a)
        self.jobs_active.labels(a)
        self.voice_turns.labels(a)
        self.voice_interruptions.labels(a)
        for reason in CALL_CUT_REASONS:
            self.calls_cut.labels(reason)
        for result in PROBE_RESULTS:
            self.heartbeat_probes.labels(result)
        for alert in ALERTS:
            self.alert_active.labels(alert)
            self.alerts_fired.labels(alert)
        self.build_info.labels(__version__, platform.python_version()).set(1)

    def _letta_metrics(self) -> None:
        self.letta_errors = self._counter(
            "voiceops_letta_errors_total",
            "Call turns Letta failed (the caller heard the apology), by kind.",
            ("agent_name", "kind"))
        for kind in LETTA_ERROR_KINDS:
            self.letta_errors.labels(self.agent_name, kind)

    def add_process(self, name: str) -> None:
        """Create a process's series (at zero) when it first appears."""
        self.process_up.labels(name)
        self.process_crashloop.labels(name)
        self.process_pss.labels(name)
        self.process_cpu.labels(name)
        for state in PROCESS_STATES:
            self.process_state.labels(name, state)
        for reason in RESTART_REASONS:
            self.process_restarts.labels(name, reason)

    def set_process_state(self, name: str, state: str) -> None:
        for s in PROCESS_STATES:
            self.process_state.labels(name, s).set(1 if s == state else 0)

    def remove_process(self, name: str) -> None:
        """Drop a scaled-away process's gauges (counters stay: they must be monotonic)."""
        for gauge in (self.process_up, self.process_crashloop, self.process_pss):
            with contextlib.suppress(KeyError):
                gauge.remove(name)
        for s in PROCESS_STATES:
            with contextlib.suppress(KeyError):
                self.process_state.remove(name, s)
