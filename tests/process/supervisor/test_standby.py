"""Real processes: a warm standby takes a dead worker's slot at once, and is replaced."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, wait_for

pytestmark = pytest.mark.process


def received(log: Path, sig: str) -> list[int]:
    if not log.exists():
        return []
    return [int(line.split()[0]) for line in log.read_text().splitlines()
            if line.split()[1] == sig]


def test_standby_takes_over_a_killed_worker_and_the_next_is_built(
        start_supervisor: StartSupervisor, tmp_path: Path) -> None:
    """kill -9 of worker-0: the standby becomes worker-0 (SIGUSR2), a new standby starts."""
    log = tmp_path / "signals"
    sup = start_supervisor({"count": 2, "standby": 1,
                            "command": [*FAKE, "--signal-log", str(log)]})
    sup.wait_ready_workers(2)

    def standby() -> dict | None:
        found = [p for p in (sup.status() or {}).get("processes", [])
                 if p.get("role") == "standby" and p["state"] == "ready"]
        return found[0] if found else None

    first = wait_for(standby, 30, "a ready standby")
    assert received(log, "SIGUSR2") == []  # nothing activates a standby while all is well
    victim = next(w for w in sup.procs() if w["name"] == "worker-0")
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: any(w["name"] == "worker-0" and w["pid"] == first["pid"]
                         and w["state"] == "ready" for w in sup.procs()), 20,
             "the standby serving as worker-0")
    assert received(log, "SIGUSR2") == [first["pid"]]
    second = wait_for(standby, 30, "the next standby")
    assert second["pid"] not in (first["pid"], victim["pid"])
    assert "standby_takeover process=worker-0 standby=standby-0" in sup.stderr()
    assert (sup.metric("voiceops_process_restarts_total", process="worker-0", reason="oom")
            or 0) + (sup.metric("voiceops_process_restarts_total", process="worker-0",
                                reason="signal") or 0) >= 1
    assert sup.metric("voiceops_pool_ready_workers") == 2
    # The former standby still reports under its spawn name: its events are its slot's.
    assert sup.metric("voiceops_events_refused_total") == 0


def test_without_a_ready_standby_the_worker_restarts_cold(start_supervisor: StartSupervisor,
                                                          tmp_path: Path) -> None:
    """standby = 0: a killed worker is restarted in place, as before."""
    sup = start_supervisor({"count": 1, "standby": 0, "command": [*FAKE]})
    victim = sup.wait_ready_workers(1)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: any(w["state"] == "ready" and w["pid"] != victim["pid"]
                         for w in sup.procs()), 30, "worker-0 restarted")
    assert not [p for p in (sup.status() or {}).get("processes", []) if p.get("role")]
