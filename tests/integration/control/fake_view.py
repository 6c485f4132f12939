"""An in-memory SupervisorView for the control-layer tests (the lead tests the real pool)."""

from __future__ import annotations

import time
from typing import Any

from voiceops.supervisor.api import ControlError

MAX_WORKERS = 8


class FakeView:
    """Implements the SupervisorView Protocol over a dict of processes; records every call."""

    def __init__(self) -> None:
        self.ready = True
        self.alive = True
        self.broken = False  # status() raises, to check that bugs answer 500 without details
        self.desired = 2
        self.calls: list[tuple[str, Any]] = []
        now = time.time()
        self.processes: list[dict[str, Any]] = [
            self._proc("worker-0", "worker", "ready", 4101, 3725.0, 0, 150 * 2**20, 1),
            self._proc("worker-1", "worker", "backoff", None, None, 3, None, 0),
            self._proc("proxy", "proxy", "ready", 4103, 42.0, 1, 40 * 2**20, 0),
        ]
        self.alerts = [{"alert": "WorkerCrashLoop", "since": now - 125,
                        "diagnosis": "worker-1 exited 3 times in 600 s (crash(1))", "labels": {}}]

    @staticmethod
    def _proc(name: str, kind: str, state: str, pid: int | None, uptime_s: float | None,
              restarts: int, rss_bytes: int | None, jobs: int) -> dict[str, Any]:
        return {"name": name, "kind": kind, "state": state, "pid": pid, "uptime_s": uptime_s,
                "restarts": restarts, "pss_bytes": rss_bytes, "cpu_s": 1.5, "active_jobs": jobs,
                "last_exit": "crash(1)" if restarts else None, "worker_id": "AW_x",
                "agent_name": "letta-voice-agent"}

    def status(self) -> dict[str, Any]:
        if self.broken:
            raise RuntimeError("internal detail /etc/secret-path")
        ready = sum(p["state"] == "ready" and p["kind"] == "worker" for p in self.processes)
        return {"version": "0.1.0", "state": "running", "ready": self.ready,
                "summary": f"workers {ready}/{self.desired} ready; proxy up; 1 calls",
                "pool": {"desired": self.desired, "ready": ready, "parked": 0,
                         "unhealthy": False},
                "processes": self.processes, "alerts": self.alerts}

    def is_ready(self) -> bool:
        return self.ready

    def is_alive(self) -> bool:
        return self.alive

    async def scale(self, count: int) -> dict[str, Any]:
        self.calls.append(("scale", count))
        if count > MAX_WORKERS:
            raise ControlError(409, f"count: at most {MAX_WORKERS} workers on this host")
        self.desired = count
        return {"desired": count, "message": f"scaling to {count} workers"}

    async def restart(self, name: str) -> dict[str, Any]:
        self.calls.append(("restart", name))
        names = [p["name"] for p in self.processes] if name == "all" else [name]
        return {"restarting": names}

    def dispatch_timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        if dispatch_id != "AD_known":
            return None
        return {"dispatch_id": dispatch_id, "room": "r1", "phase": "joined",
                "job_request_after_s": 0.05, "joined_after_s": 0.4, "redispatched": False}

    async def drain(self, name: str) -> dict[str, Any]:
        self.calls.append(("drain", name))
        if name == "proxy":
            raise ControlError(409, "proxy: only workers can be drained")
        return {"draining": name}
