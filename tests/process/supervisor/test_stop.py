"""Real processes: one SIGTERM per worker, drains with EXTEND_TIMEOUT_USEC, drain budgets."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, NotifyListener, wait_for

pytestmark = pytest.mark.process


def signals_by_pid(log: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        pid, name = line.split()
        out[int(pid)].append(name)
    return out


@pytest.mark.parametrize("how", ["supervisor", "process-group", "twice"])
def test_each_worker_gets_exactly_one_sigterm(start_supervisor: StartSupervisor, tmp_path: Path,
                                              how: str) -> None:
    """SIGTERM to the supervisor, to its whole process group, or twice: each worker records one
    SIGTERM."""
    log = tmp_path / "signals"
    sup = start_supervisor(
        {
            "count": 2,
            "command": [*FAKE, "--jobs", "1", "--drain-s", "1.5", "--signal-log", str(log)],
        },
        proxy={"command": [*FAKE, "--signal-log", str(log)]},
    )
    workers = sup.wait_ready_workers(2)
    wait_for(lambda: all(p["state"] == "ready" for p in sup.procs("proxy")), 20, "proxy ready")
    if how == "process-group":
        os.killpg(sup.proc.pid, signal.SIGTERM)
    else:
        sup.signal(signal.SIGTERM)
    if how == "twice":
        wait_for(lambda: log.exists() and len(signals_by_pid(log)) >= 3, 20, "workers draining")
        sup.signal(signal.SIGTERM)
    assert sup.wait(60) == 0
    got = signals_by_pid(log)
    for w in workers:
        assert got[w["pid"]] == ["SIGTERM"], got
    assert "process_exited process=worker-0" in sup.stderr()
    assert "drain_timeout" not in sup.stderr()


def test_drain_finishes_calls_and_extends_the_stop_timeout(
        start_supervisor: StartSupervisor, notify: NotifyListener) -> None:
    """Two active jobs for 3 s: a clean exit, STOPPING=1 first, then EXTEND_TIMEOUT_USEC while
    draining; the proxy stops first."""
    sup = start_supervisor(
        {"count": 1, "command": [*FAKE, "--jobs", "2", "--drain-s", "3"], "drain_timeout_s": 60},
        proxy={"command": [*FAKE]}, env={"NOTIFY_SOCKET": str(notify.path)})
    sup.wait_ready_workers(1)
    wait_for(lambda: notify.lines("READY=1"), 20, "READY=1")
    wait_for(lambda: (sup.status() or {}).get("summary", "").endswith("2 calls"), 10, "2 calls")
    sup.signal(signal.SIGTERM)
    assert sup.wait(60) == 0
    stopping = notify.lines("STOPPING=1")
    extends = notify.lines("EXTEND_TIMEOUT_USEC=")
    assert stopping and extends and stopping[0][0] <= extends[0][0]
    assert all(int(v.split("=")[1]) > 30_000_000 for _, v in extends)
    err = sup.stderr()
    assert err.index("process_exited process=proxy") < err.index(
        "process_draining process=worker-0")
    assert "process_exited process=worker-0" in err and "jobs_cut" not in err


def test_drain_budget_kills_and_counts_cut_jobs(start_supervisor: StartSupervisor) -> None:
    """A drain that outlives its 2 s budget is SIGKILLed; its 2 jobs count as cut; it is
    replaced."""
    sup = start_supervisor({"count": 1, "command": [*FAKE, "--jobs", "2", "--drain-s", "60"],
                            "drain_timeout_s": 2})
    old = sup.wait_ready_workers(1)[0]
    wait_for(lambda: sup.procs()[0]["active_jobs"] == 2, 10, "2 jobs")
    assert sup.metric("voiceops_drain_killed_jobs_total") == 0
    code, body = sup.request("POST", "/drain", {"name": "worker-0"})
    assert code == 200, body
    wait_for(lambda: sup.metric("voiceops_drain_killed_jobs_total") == 2, 20, "2 cut jobs")
    new = sup.wait_ready_workers(1)[0]
    assert new["pid"] != old["pid"]
    assert new["last_exit"] == "drain_timeout(SIGKILL)"
    assert sup.metric("voiceops_process_restarts_total", process="worker-0",
                      reason="drain_timeout") == 1


def test_shutdown_with_short_budget_exits(start_supervisor: StartSupervisor) -> None:
    """On SIGTERM, a worker that will not finish is killed at the budget and the supervisor exits
    0."""
    sup = start_supervisor({"count": 1, "command": [*FAKE, "--jobs", "2", "--drain-s", "60"],
                            "drain_timeout_s": 2})
    sup.wait_ready_workers(1)
    sup.signal(signal.SIGTERM)
    assert sup.wait(30) == 0
    assert "drain_timeout process=worker-0 jobs_cut=2" in sup.stderr()
