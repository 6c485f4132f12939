"""Issue 11, item 8: events are taken only from the claimed child's process tree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, wait_for

pytestmark = pytest.mark.process


def forged(process: str, pid: int) -> bytes:
    return json.dumps({"v": 1, "type": "dispatch_created", "ts": time.time(), "process": process,
                       "pid": pid, "dispatch_id": "AD_forged", "room": "r", "agent_name": "x",
                       "latency_s": 0.01}).encode()


def test_forged_events_from_unrelated_processes_are_refused(
        start_supervisor: StartSupervisor) -> None:
    """A same-user process that is not in worker-0's tree cannot speak for it (not even with
    worker-0's pid in the event); the workers' own events still count."""
    sup = start_supervisor({"count": 1, "command": [*FAKE]})
    (worker,) = sup.wait_ready_workers(1)
    path = str(sup.tmp / "run" / "events.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # this test process
        sock.sendto(forged("worker-0", worker["pid"]), path)
    code = ("import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
            "s.sendto(sys.stdin.buffer.read(), sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, path], input=forged("proxy", os.getpid()),
                   check=True, timeout=30)
    wait_for(lambda: sup.metric("voiceops_events_refused_total") == 2, 10, "two refusals")
    assert sup.metric("voiceops_dispatch_requests_total", outcome="ok") == 0
    assert sup.metric("voiceops_events_dropped_total") == 0
    assert sup.log_matches(r"event_refused type=dispatch_created claimed=worker-0")
    code, body = sup.request("POST", "/restart", {"name": "worker-0"})
    assert code == 200, body
    wait_for(lambda: any(w["pid"] != worker["pid"] and w["state"] == "ready"
                         for w in sup.procs()), 30, "the restarted worker's ready event counted")
