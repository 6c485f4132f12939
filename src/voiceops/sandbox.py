"""What ``voiceops run --sandbox`` changes beyond starting the emulator: a quicker heartbeat.

The sandbox's LiveKit is the local emulator, which answers in milliseconds, so the
heartbeat probes every few seconds with a short timeout: a fault injected by hand shows up in
``voiceops status`` within seconds instead of after two 30 s intervals. Longer settings than
these are shortened; shorter ones (tests) are kept.
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


def monitor_config(cfg: Config) -> Config:
    """``cfg`` with the sandbox's heartbeat (only the monitor reads these keys)."""
    hb = cfg.heartbeat
    quick = dataclasses.replace(hb, interval_s=min(hb.interval_s, HEARTBEAT_INTERVAL_S),
                                timeout_s=min(hb.timeout_s, HEARTBEAT_TIMEOUT_S))
    return dataclasses.replace(cfg, heartbeat=quick)
