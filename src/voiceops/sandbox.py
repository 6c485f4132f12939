"""What ``voiceops run --sandbox`` changes beyond starting the emulator: a quicker heartbeat,
and workers whose load counts their calls.

The sandbox's LiveKit is the local emulator, which answers in milliseconds, so the
heartbeat probes every few seconds with a short timeout: a fault injected by hand shows up in
``voiceops status`` within seconds instead of after two 30 s intervals. Longer settings than
these are shortened; shorter ones (tests) are kept.

livekit-agents' default load is the whole machine's CPU, and LiveKit offers no job to a worker
at load >= 0.7: on a laptop that is busy (or during the sandbox's own offline speech, on two
cores) every sandbox call would go unanswered. So unless ``workers.max_jobs`` is set, sandbox
workers report load by their calls, full at ``SANDBOX_MAX_JOBS``.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from voiceops.config import Config

HEARTBEAT_INTERVAL_S: Final = 5.0
HEARTBEAT_TIMEOUT_S: Final = 2.0
# Interval + probe timeout + the confirming probe's timeout, plus room for a busy machine:
# the time the README promises for the fault step.
FAULT_VISIBLE_WITHIN_S: Final = 15.0
SANDBOX_MAX_JOBS: Final = 4  # offline speech is CPU-heavy: a few calls per worker at most


def worker_max_jobs(configured: int, *, sandbox: bool) -> int:
    """``workers.max_jobs`` as a worker uses it: the sandbox's when none is configured."""
    return SANDBOX_MAX_JOBS if sandbox and configured == 0 else configured


def monitor_config(cfg: Config) -> Config:
    """``cfg`` with the sandbox's heartbeat (only the monitor reads these keys)."""
    hb = cfg.heartbeat
    quick = dataclasses.replace(hb, interval_s=min(hb.interval_s, HEARTBEAT_INTERVAL_S),
                                timeout_s=min(hb.timeout_s, HEARTBEAT_TIMEOUT_S))
    return dataclasses.replace(cfg, heartbeat=quick)
