"""Harness for the monitor tests: the supervisor's event socket and status, and worker processes.

The real supervisor is another helper's work; here the shared event recorder receives the
children's events exactly as the supervisor's socket does and hands them to the Monitor, and a
small status dict (pool ready count from ``ready`` events) stands in for ``status()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from voiceops import config, events
from voiceops.metrics import Metrics
from voiceops.monitor.monitor import Monitor, MonitorOptions
from voiceops.monitor.sinks import SinkOptions
from voiceops.testing.eventrec import EventRecorder

HERE = Path(__file__).resolve().parent


def event_socket(on_event: Callable[[events.Event], None]) -> EventRecorder:
    """The shared recorder, reading as datagrams arrive; each typed event goes to ``on_event``."""
    return EventRecorder(decode=events.decode, on_event=on_event).start_reading()


class FakePool:
    """The slice of the supervisor's status() the monitor reads, driven by ``ready`` events."""

    def __init__(self, desired: int) -> None:
        self.desired = desired
        self.processes: dict[str, dict[str, Any]] = {}

    def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Ready) and event.process.startswith("worker"):
            self.processes[event.process] = {
                "name": event.process, "kind": "worker", "state": "ready",
                "worker_id": event.worker_id, "agent_name": event.agent_name, "active_jobs": 0}

    def status(self) -> dict[str, Any]:
        ready = sum(1 for p in self.processes.values() if p["state"] == "ready")
        return {"pool": {"desired": self.desired, "ready": ready, "parked": 0},
                "processes": list(self.processes.values())}


def monitor_config(server: Any, *, agent_name: str, deadline_s: float = 2.0,
                   interval_s: float = 2.0, timeout_s: float = 1.0, heartbeat: bool = True,
                   webhooks: tuple[str, ...] = (), alertmanager_url: str = "",
                   url: str | None = None, redispatch: bool = False,
                   mode: str = "request") -> config.Config:
    return config.from_dict({
        "livekit": {"url": url or server.url, "api_key": server.api_key},
        "agent": {"name": agent_name},
        # as the workers run: load counts jobs, since LiveKit offers none at a busy box's CPU >= 0.7
        "workers": {"load_threshold": 1.0, "max_jobs": 20},
        "monitor": {"job_request_deadline_s": deadline_s, "redispatch_unanswered": redispatch},
        "heartbeat": {"enabled": heartbeat, "interval_s": interval_s, "timeout_s": timeout_s,
                      "mode": mode},
        "alerts": {"webhooks": list(webhooks), "alertmanager_url": alertmanager_url},
    })


FAST = MonitorOptions(tick_s=0.1, livekit_check_interval_s=0.5, livekit_timeout_s=2.0,
                      pool_check_interval_s=0.5, no_ready_grace_s=60.0, worker_info_timeout_s=2.0,
                      host="test", sinks=SinkOptions(backoff_base_s=0.1, am_resend_s=2.0))


def make_monitor(cfg: config.Config, secret: str, pool: FakePool,
                 options: MonitorOptions = FAST) -> Monitor:
    from prometheus_client import CollectorRegistry

    metrics = Metrics(cfg.agent.name, CollectorRegistry())
    return Monitor(cfg, config.Secrets(livekit_api_secret=secret), metrics,
                   status_provider=pool.status, options=options)


def worker_toml(path: Path, server: Any, agent_name: str) -> Path:
    path.write_text(
        f'[livekit]\nurl = "{server.url}"\napi_key = "{server.api_key}"\n\n'
        f'[agent]\nname = "{agent_name}"\n\n'
        # The placeholder agent (joins, no media): these tests are about the dispatch path.
        '[workers]\nentrypoint = "voiceops.agent.basic:entrypoint"\nnum_idle_processes = 0\n'
        'load_threshold = 1.0\nmax_jobs = 20\ndrain_timeout_s = 10\n',
        encoding="utf-8")
    return path


class Child:
    """A child process in its own group, logging to a file; ``kill`` checks nothing is left."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def _group(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["status"]):
            try:
                if os.getpgid(p.pid) == self.proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except (ProcessLookupError, psutil.Error):
                continue
        return out

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        deadline = time.monotonic() + 15
        while (left := self._group()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"


async def spawn(argv: list[str], *, log_dir: Path, name: str, env: dict[str, str]) -> Child:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "VOICEOPS_"))}
    base["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [base.get("PYTHONPATH")])])
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv, env={**base, **env}, stdout=log, stderr=asyncio.subprocess.STDOUT,
            process_group=0)
    return Child(proc, log_path)


async def spawn_voiceops_worker(server: Any, agent_name: str, *, tmp: Path, process: str,
                                events_path: str = "") -> Child:
    """``python -m voiceops.worker``; with no ``events_path`` nobody hears its events."""
    cfg = worker_toml(tmp / f"{process}.toml", server, agent_name)
    env = {"LIVEKIT_API_SECRET": server.api_secret, "VOICEOPS_PROCESS": process,
           "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "3"}
    if events_path:
        env["VOICEOPS_EVENTS"] = events_path
    return await spawn([sys.executable, "-m", "voiceops.worker", "--config", str(cfg)],
                       log_dir=tmp, name=process, env=env)
