"""Real processes: backoff, crash-loop parking with automatic retry, orphan killing."""

from __future__ import annotations

import itertools
import os
import re
import signal
from pathlib import Path

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, assert_gone, wait_for

pytestmark = pytest.mark.process


def backoffs(sup_stderr: str) -> list[tuple[float, int]]:
    return [(float(m.group(1)), int(m.group(2))) for m in re.finditer(
        r"process_backoff process=worker-0 delay_s=([\d.]+) failures=(\d+)", sup_stderr)]


def starts(pid_file: Path) -> list[float]:
    return [float(line.split()[1]) for line in pid_file.read_text().splitlines()]


def test_crash_loop_backs_off_parks_and_retries(start_supervisor: StartSupervisor,
                                                tmp_path: Path) -> None:
    """A worker exiting 1 quickly: growing jittered delays, PARKED (crashloop=1), retried after the
    cool-down (crashloop=0)."""
    pid_file = tmp_path / "starts"
    sup = start_supervisor({
        "count": 1, "command": [*FAKE, "--exit-after", "0.3", "--pid-file", str(pid_file)],
        "backoff_base_s": 0.2, "backoff_max_s": 0.8, "crashloop_failures": 4,
        "crashloop_window_s": 60, "crashloop_cooldown_s": 3})
    wait_for(lambda: [w for w in sup.procs() if w["state"] == "parked"], 40, "parked")
    assert sup.metric("voiceops_process_crashloop", process="worker-0") == 1
    delays = backoffs(sup.stderr())
    assert [n for _, n in delays] == [1, 2, 3]
    for delay, n in delays:
        assert 0.2 <= delay <= min(0.8, 0.2 * 2 ** (n - 1)) + 1e-9
    t = starts(pid_file)
    gaps = [b - a for a, b in itertools.pairwise(t)]
    assert all(gap >= delay + 0.3 for gap, (delay, _) in zip(gaps, delays, strict=False))
    assert sup.metric("voiceops_process_restarts_total", process="worker-0",
                      reason="crash") == 3
    parked_starts = len(t)
    wait_for(lambda: len(starts(pid_file)) > parked_starts, 30, "retry after the cool-down")
    wait_for(lambda: sup.metric("voiceops_process_crashloop", process="worker-0") == 0
             or None, 10, "crashloop gauge back to 0")


def test_crash_after_long_uptime_still_backs_off(start_supervisor: StartSupervisor) -> None:
    """A worker that is READY for a while and then crashes, repeatedly, keeps backing off (no
    reset)."""
    sup = start_supervisor({
        "count": 1, "command": [*FAKE, "--ready-after", "0", "--exit-after", "1.5"],
        "backoff_base_s": 0.3, "backoff_max_s": 10, "stable_after_s": 60,
        "crashloop_failures": 10})
    wait_for(lambda: len(backoffs(sup.stderr())) >= 3, 40, "three backoffs")
    delays = backoffs(sup.stderr())
    assert [n for _, n in delays[:3]] == [1, 2, 3]
    assert all(d >= 0.3 for d, _ in delays)
    assert "process_ready process=worker-0" in sup.stderr()


def test_orphaned_grandchild_is_killed(start_supervisor: StartSupervisor, tmp_path: Path) -> None:
    """A SIGKILLed worker's setsid grandchild does not survive, and the orphan counter rises."""
    gc_file = tmp_path / "grandchild.pid"
    sup = start_supervisor({"count": 1, "command": [*FAKE, "--grandchild", str(gc_file)],
                            "backoff_base_s": 0.2})
    worker = sup.wait_ready_workers(1)[0]
    gc_pid = int(wait_for(lambda: gc_file.exists() and gc_file.read_text().strip(), 20,
                          "grandchild pid"))
    wait_for(sup.status, 5)  # one more tick so the tree is remembered
    gc_file.unlink()
    os.kill(worker["pid"], signal.SIGKILL)
    assert_gone([gc_pid])
    wait_for(lambda: (sup.metric("voiceops_orphans_killed_total") or 0) >= 1, 10,
             "orphan counter")
    new = sup.wait_ready_workers(1)[0]
    # An outside SIGKILL with no OOM kill counted by the kernel is not called OOM.
    assert new["pid"] != worker["pid"] and new["last_exit"] == "signal(SIGKILL)"
    new_gc = int(wait_for(lambda: gc_file.exists() and gc_file.read_text().strip(), 20))
    sup.signal(signal.SIGTERM)
    assert sup.wait(30) == 0
    assert_gone([new_gc])


def test_children_stop_when_the_supervisor_is_killed(start_supervisor: StartSupervisor,
                                                      tmp_path: Path) -> None:
    """SIGKILL of the supervisor: every child gets SIGTERM from the kernel and exits, no orphans."""
    signal_log = tmp_path / "signals"
    sup = start_supervisor({"count": 2, "command": [*FAKE, "--signal-log", str(signal_log)]})
    workers = sup.wait_ready_workers(2)
    pids = [w["pid"] for w in workers]
    sup.signal(signal.SIGKILL)
    sup.wait(10)
    assert_gone(pids, timeout_s=15)
    assert signal_log.read_text().count("SIGTERM") >= 2, signal_log.read_text()


def test_sub_second_backoff_ends_without_waiting_for_a_tick(start_supervisor: StartSupervisor,
                                                             tmp_path: Path) -> None:
    """With a 30 s tick, a 0.1 s backoff still restarts at once: the loop wakes when it ends."""
    pid_file = tmp_path / "starts"
    sup = start_supervisor({
        "count": 1, "standby": 0,
        "command": [*FAKE, "--exit-after", "0.2", "--pid-file", str(pid_file)],
        "backoff_base_s": 0.1, "backoff_max_s": 0.1, "crashloop_failures": 100},
        env={"VOICEOPS_TICK_INTERVAL_S": "30"})
    wait_for(lambda: pid_file.exists() and len(starts(pid_file)) >= 4, 20,
             "four starts (three backoffs) long before one 30 s tick")
    assert [n for _, n in backoffs(sup.stderr())][:3] == [1, 2, 3]
