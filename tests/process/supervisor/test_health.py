"""Real processes: RSS limits, the watchdog gate, output that never blocks a child."""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, NotifyListener, wait_for

pytestmark = pytest.mark.process


def test_rss_over_soft_limit_drains_and_restarts(start_supervisor: StartSupervisor) -> None:
    """Tree RSS above the soft limit for N samples: one drain-restart with reason rss."""
    sup = start_supervisor(
        {"count": 1, "command": [*FAKE, "--rss-mb", "80"], "rss_soft_limit_mb": 60},
        env={"VOICEOPS_RESOURCE_INTERVAL_S": "0.3", "VOICEOPS_RSS_SAMPLES": "3"})
    first = sup.wait_ready_workers(1)[0]
    wait_for(lambda: (sup.metric("voiceops_process_restarts_total", process="worker-0",
                                 reason="rss") or 0) >= 1, 30, "an rss restart")
    assert "rss_soft_limit process=worker-0" in sup.stderr()
    new = wait_for(lambda: [w for w in sup.procs() if w["pid"] not in (None, first["pid"])],
                   30, "replacement")[0]
    assert new["last_exit"] == "rss"
    assert (sup.metric("voiceops_process_pss_bytes", process="worker-0") or 0) >= 0


def test_rss_under_soft_limit_is_left_alone(start_supervisor: StartSupervisor) -> None:
    """A worker under its limit is sampled (RSS and CPU exported) but never restarted."""
    sup = start_supervisor(
        {"count": 1, "command": [*FAKE], "rss_soft_limit_mb": 500},
        env={"VOICEOPS_RESOURCE_INTERVAL_S": "0.3", "VOICEOPS_RSS_SAMPLES": "2"})
    w = sup.wait_ready_workers(1)[0]
    wait_for(lambda: (sup.metric("voiceops_process_pss_bytes", process="worker-0") or 0)
             > 5_000_000, 20, "rss sampled")
    wait_for(lambda: (sup.metric("voiceops_process_cpu_seconds_total", process="worker-0")
                      or 0) > 0, 20, "cpu sampled")
    assert sup.procs()[0]["pid"] == w["pid"]
    assert sup.metric("voiceops_process_restarts_total", process="worker-0", reason="rss") == 0


def test_stalled_reconcile_loop_stops_watchdog_pings(start_supervisor: StartSupervisor,
                                                     notify: NotifyListener) -> None:
    """WATCHDOG=1 comes every half period while ticks complete, stops while the loop is stalled,
    resumes after."""
    sup = start_supervisor({"count": 1, "command": [*FAKE]}, env={
        "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000",
        "VOICEOPS_DEBUG_STALL_TICK_S": "4"})
    wait_for(lambda: len(notify.lines("WATCHDOG=1")) >= 4, 30, "steady pings")
    sup.signal(signal.SIGUSR2)
    wait_for(lambda: "debug_tick_stall" in sup.stderr(), 10, "stall begins")
    stalled_at = notify.lines("WATCHDOG=1")[-1][0]
    wait_for(lambda: [t for t, _ in notify.lines("WATCHDOG=1") if t > stalled_at + 2.5], 20,
             "pings resume")
    times = [t for t, _ in notify.lines("WATCHDOG=1")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 2.5, gaps  # withheld during the stall
    assert sorted(gaps)[len(gaps) // 2] < 1.0  # but steady otherwise (period 0.5 s)
    assert "watchdog_withheld" in sup.stderr()


def test_huge_line_then_crash_keeps_the_tail(start_supervisor: StartSupervisor) -> None:
    """A 1 MiB line with no newline, then exit 3: the crash report holds the line's end."""
    sup = start_supervisor({"count": 1, "restart": "never", "command": [
        *FAKE, "--stdout-lines", "3", "--long-line-bytes", str(1024 * 1024),
        "--marker", "TAIL-MARKER-42", "--exit-after", "0.5", "--exit-code", "3"]})
    wait_for(lambda: "reason=crash(3)" in sup.stderr(), 30, "the crash report")
    report = sup.stderr().split("reason=crash(3)", 1)[1]
    assert "line 2" in report and "TAIL-MARKER-42" in report
    assert sup.procs()[0]["state"] == "exited"
    forwarded = (sup.tmp / "supervisor.stdout").read_bytes()
    assert b"[worker-0] line 0" in forwarded


def test_a_child_flooding_output_is_never_blocked(start_supervisor: StartSupervisor,
                                                  tmp_path: Path) -> None:
    """With the supervisor's stdout a pipe nobody reads, a child writing 20 MiB still finishes."""
    read_end, write_end = os.pipe()
    done = tmp_path / "flood.done"
    try:
        sup = start_supervisor({"count": 1, "command": [
            *FAKE, "--flood-mb", "20", "--done-file", str(done)]}, stdout=write_end)
        wait_for(done.exists, 60, "the flood to be written")
        assert sup.wait_ready_workers(1)  # and the supervisor still answers
    finally:
        os.close(write_end)
        sup.close()
        os.close(read_end)
