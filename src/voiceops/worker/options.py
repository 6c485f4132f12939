"""The worker's options: one frozen dataclass built once from the config and the secrets."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

from voiceops import sandbox
from voiceops.config import Config, Secrets
from voiceops.worker.fleet import ENV as FLEET_ENV

logger = logging.getLogger("voiceops.worker")

# The LiveKit server's target load (Go: agent.DefaultTargetLoad, `agents.target_load`): it offers
# a job only to a node whose workers score 0.7 - load > 0, so a worker reporting load >= 0.7
# gets no JobRequest whatever status it reports.
SERVER_TARGET_LOAD = 0.7


@dataclass(frozen=True)
class WorkerOptions:
    """Everything one ``python -m voiceops.worker`` process needs, validated once."""

    ws_url: str
    api_key: str
    api_secret: str = field(repr=False)
    agent_name: str
    entrypoint: str  # "module:function", resolved in the job process
    num_idle_processes: int
    load_threshold: float
    drain_timeout_s: float
    # 0: load is the machine's CPU use (livekit-agents' measure); N: load is
    # SERVER_TARGET_LOAD * active_jobs / N, so LiveKit stops offering jobs at N.
    max_jobs: int = 0
    # Health server (GET / and GET /worker): loopback, a free port per worker slot.
    health_host: str = "127.0.0.1"
    health_port: int = 0
    # How often the worker process compares its active job count (jobs event on change).
    jobs_poll_interval_s: float = 0.25
    # Start as a standby ($VOICEOPS_STANDBY=1 from the supervisor): registered, warm, full.
    standby: bool = False
    # A job process's prewarm (VAD, piper voice) may take seconds on a busy machine.
    initialize_process_timeout_s: float = 60.0
    # The supervisor's workers' shared records ($VOICEOPS_FLEET_DIR; "" = no spreading).
    fleet_dir: str = ""

    @classmethod
    def from_config(cls, cfg: Config, secrets: Secrets) -> WorkerOptions:
        return cls(
            ws_url=cfg.livekit.url,
            api_key=cfg.livekit.api_key,
            api_secret=secrets.livekit_api_secret,
            agent_name=cfg.agent.name,
            entrypoint=cfg.workers.entrypoint,
            num_idle_processes=cfg.workers.num_idle_processes,
            load_threshold=effective_load_threshold(cfg.workers.load_threshold),
            drain_timeout_s=cfg.workers.drain_timeout_s,
            max_jobs=sandbox.worker_max_jobs(
                cfg.workers.max_jobs, sandbox=os.environ.get("VOICEOPS_SANDBOX") == "1"),
            standby=os.environ.get("VOICEOPS_STANDBY") == "1",
            fleet_dir=os.environ.get(FLEET_ENV, "") if cfg.workers.spread_jobs else "",
        )


def effective_load_threshold(configured: float) -> float:
    """``workers.load_threshold`` as livekit-agents gets it: 1.0 is off, else at most 0.7.

    A worker at or above the threshold reports WS_FULL and declines JobRequests itself. Between
    0.7 and 1.0 the threshold means nothing: the worker would report AVAILABLE while the server
    offers it no job, so it is clamped to 0.7. 1.0 turns the worker's own shedding off
    (livekit-agents' dev mode: no WS_FULL, no reserved load per pending request); the server's
    0.7 still applies to the load it reports (see ``max_jobs``)."""
    if configured >= 1.0:
        return math.inf
    if configured > SERVER_TARGET_LOAD:
        # LiveKit offers no job at load >= its target, whatever the worker reports.
        logger.warning("load_threshold_clamped configured=%.2f server_target_load=%.1f",
                       configured, SERVER_TARGET_LOAD)
        return SERVER_TARGET_LOAD
    return configured


def jobs_load(active_jobs: int, max_jobs: int) -> float:
    """The load a worker reports when ``workers.max_jobs`` is set: 0.7 at max_jobs jobs."""
    return min(1.0, SERVER_TARGET_LOAD * active_jobs / max_jobs)
