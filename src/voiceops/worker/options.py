"""The worker's options: one frozen dataclass built once from the config and the secrets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from voiceops.config import Config, Secrets


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
    # Health server (GET / and GET /worker): loopback, a free port per worker slot.
    health_host: str = "127.0.0.1"
    health_port: int = 0
    # How often the worker process compares its active job count (jobs event on change).
    jobs_poll_interval_s: float = 0.25
    # A job process's prewarm (VAD, piper voice) may take seconds on a busy machine.
    initialize_process_timeout_s: float = 60.0

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
        )


def effective_load_threshold(configured: float) -> float:
    """``workers.load_threshold`` as livekit-agents gets it; 1.0 turns load shedding off.

    livekit-agents' load is the machine's CPU use (0..1, 2.5 s average) and a worker at or above
    the threshold declines every JobRequest. At 1.0 a merely busy machine (say, a shared CI box)
    would decline dispatches, so 1.0 means "never full", like livekit's dev mode.
    """
    return math.inf if configured >= 1.0 else configured
