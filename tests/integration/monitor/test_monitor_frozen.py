"""Issue 11, item 5: a hung LiveKit (SIGSTOP: connections accepted, nothing answered) and a
LiveKit answering 503 are both caught within two heartbeat intervals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from monitor_helpers import monitor_config, spawn_voiceops_worker

from voiceops.monitor import alerts as A
from voiceops.monitor.monitor import MonitorOptions
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process, pytest.mark.faults,
              pytest.mark.usefixtures("no_leaked_children")]
INTERVAL_S = 3.0
TIMEOUT_S = 2.5  # close to the interval: the case where probes used to overrun it
SLACK_S = 0.5  # the monitor's tick and this test's poll
# The production defaults for the LiveKit check (10 s apart, 5 s timeout): the heartbeat's
# interval must bound them, not these.
OPTS = MonitorOptions(tick_s=0.1, host="frozen-test")


async def _ready(h: Any, livekit_server: Any, tmp_path: Path, name: str) -> None:
    h.children.append(await spawn_voiceops_worker(livekit_server, name, tmp=tmp_path,
                                                  process="worker-0", events_path=h.socket.path))
    await wait_for_async(lambda: h.value("voiceops_heartbeat_probes_total", result="ok") >= 1,
                         60, "a first successful heartbeat probe")


async def _both_fire_within_two_intervals(h: Any, since: float) -> None:
    for alert in (A.HEARTBEAT_FAILED, A.LIVEKIT_UNREACHABLE):
        left = since + 2 * INTERVAL_S + SLACK_S - time.monotonic()
        await wait_for_async(lambda a=alert: h.alert(a), max(left, 0.0),
                             f"{alert} in two intervals")


async def test_frozen_livekit_alerts_within_two_intervals(livekit_server: Any, harness: Any,
                                                          tmp_path: Path) -> None:
    """SIGSTOP the server: HeartbeatFailed and LiveKitUnreachable fire within 2 × interval_s."""
    if livekit_server.pid is None:
        pytest.skip("needs a LiveKit process this test may freeze")
    name = f"frozen-{os.getpid()}"
    cfg = monitor_config(livekit_server, agent_name=name, interval_s=INTERVAL_S,
                         timeout_s=TIMEOUT_S)
    h = await harness(cfg, options=OPTS)
    await _ready(h, livekit_server, tmp_path, name)
    os.kill(livekit_server.pid, signal.SIGSTOP)
    try:
        await _both_fire_within_two_intervals(h, time.monotonic())
        assert "timed out" in h.alert(A.LIVEKIT_UNREACHABLE)["diagnosis"]
    finally:
        os.kill(livekit_server.pid, signal.SIGCONT)
    await wait_for_async(lambda: not h.alert(A.HEARTBEAT_FAILED), 3 * INTERVAL_S + 5, "resolved")


async def test_livekit_503_alerts_within_two_intervals(livekit_server: Any, harness: Any,
                                                       tmp_path: Path) -> None:
    """A server answering 503 to everything: both alerts within 2 × interval_s as well."""
    name = f"five03-{os.getpid()}"
    cfg = monitor_config(livekit_server, agent_name=name, interval_s=INTERVAL_S,
                         timeout_s=TIMEOUT_S)
    h = await harness(cfg, options=OPTS)
    await _ready(h, livekit_server, tmp_path, name)
    livekit_server.faults.set(twirp_error=503)
    await _both_fire_within_two_intervals(h, time.monotonic())
    livekit_server.faults.clear()
