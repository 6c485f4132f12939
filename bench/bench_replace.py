"""Replacement: ``kill -9`` of a worker until LiveKit has an available worker again, against a
cold worker start, both with the real ``python -m voiceops.worker`` and the LiveKit emulator.

* cold (baseline): ``python -m voiceops.worker`` spawned until the emulator lists it
  ``WS_AVAILABLE`` (imports, job processes warmed, registered);
* voiceops: the real supervisor runs one worker and one standby (``workers.standby = 1``);
  worker-0 gets SIGKILL; the clock stops when the emulator lists an available worker other
  than the killed one (the standby, activated by SIGUSR2). The supervisor then builds the
  next standby (checked, not timed).

Both are read from ``GET /emulator/state`` every 5 ms. The standby's memory (PSS of its tree)
is printed: it is what ``workers.standby`` costs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from voiceops.emulator.options import DEV_API_SECRET
from voiceops.supervisor.resources import sample_tree
from voiceops.testing.harness import Supervisor, wait_for, write_toml
from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer
from voiceops.testing.procs import free_port, terminate

from .procs import AGENT, BenchError
from .report import Check, Section

POLL_S = 0.005
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ReplaceSizes:
    repeats: int


QUICK = ReplaceSizes(repeats=1)
FULL = ReplaceSizes(repeats=3)


def config(path: Path, lk: LiveKitServer, *, metrics_port: int, standby: int) -> Path:
    return write_toml(path, {
        "livekit": {"url": lk.url, "api_key": lk.api_key},
        "agent": {"name": AGENT},
        "workers": {"count": 1, "standby": standby, "num_idle_processes": 1,
                    "load_threshold": 1.0},
        "proxy": {"enabled": False},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "heartbeat": {"enabled": False},
        "letta": {"base_url": "http://127.0.0.1:9"},
        # The offline providers, as the sandbox uses: the production defaults need keys.
        "voice": {"stt": "pocketsphinx", "tts": "piper"},
    })


def available(lk: LiveKitServer, *, besides: frozenset[str] | set[str] = frozenset()
              ) -> list[str]:
    """Ids of our agent's workers the emulator would offer a job to, except ``besides``."""
    return [w["id"] for w in lk.state()["workers"] if w["status"] == "WS_AVAILABLE"
            and w["agent_name"] == AGENT and w["id"] not in besides]


def until(predicate: Any, what: str) -> float:
    """The monotonic time at which ``predicate()`` first held (the shared poll, every POLL_S)."""
    return wait_for(lambda: predicate() and time.monotonic(), TIMEOUT_S, what, POLL_S,
                    error=BenchError)


def cold_start(lk: LiveKitServer, cfg: Path) -> float:
    env = {**os.environ, "LIVEKIT_API_SECRET": DEV_API_SECRET}
    env.pop("VOICEOPS_EVENTS", None)
    before = {w["id"] for w in lk.state()["workers"]}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "voiceops.worker", "--config", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        t1 = until(lambda: available(lk, besides=before), "a cold worker registered")
    finally:
        terminate(proc, grace_s=30, kill_wait_s=10)
    until(lambda: not available(lk, besides=before), "the cold worker gone")
    return t1 - t0


def standby_proc(sup: Supervisor) -> dict[str, Any] | None:
    found = [p for p in (sup.status() or {}).get("processes", [])
             if p.get("role") == "standby" and p["state"] == "ready"]
    return found[0] if found else None


def takeover(sup: Supervisor, lk: LiveKitServer) -> tuple[float, int]:
    """(seconds from SIGKILL to an available replacement, the standby's PSS bytes)."""
    worker = sup.wait_ready_workers(1, timeout_s=TIMEOUT_S)[0]
    spare = wait_for(lambda: standby_proc(sup), TIMEOUT_S, "a ready standby")
    wait_for(lambda: available(lk), TIMEOUT_S, "worker-0 available")
    pss = tree_pss(spare["pid"])
    killed = set(available(lk))
    t0 = time.monotonic()
    os.kill(worker["pid"], signal.SIGKILL)
    t1 = until(lambda: available(lk, besides=killed), "the standby available")
    wait_for(lambda: (s := standby_proc(sup)) is not None and s["pid"] != spare["pid"],
             TIMEOUT_S, "the next standby built")
    return t1 - t0, pss


def tree_pss(pid: int) -> int:
    """PSS of a process and its descendants, read now (the supervisor samples it less often)."""
    root = psutil.Process(pid)
    return sample_tree([root, *root.children(recursive=True)]).pss_bytes or 0


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: ReplaceSizes) -> Section:
    emulator = EmulatorProcess()
    lk = emulator.start()
    sup: Supervisor | None = None
    colds: list[float] = []
    takeovers: list[float] = []
    pss = 0
    with tempfile.TemporaryDirectory(prefix="vo-bench-", dir="/tmp") as tmp:
        try:
            cold_cfg = config(Path(tmp) / "cold.toml", lk, metrics_port=free_port(), standby=0)
            port = free_port()
            sup_cfg = config(Path(tmp) / "voiceops.toml", lk, metrics_port=port, standby=1)
            sup = Supervisor(Path(tmp), sup_cfg, port, env={
                "VOICEOPS_TICK_INTERVAL_S": "1.0", "LIVEKIT_API_SECRET": DEV_API_SECRET})
            for _ in range(sizes.repeats):
                seconds, pss = takeover(sup, lk)
                takeovers.append(seconds)
            sup.close()
            sup = None
            for _ in range(sizes.repeats):
                colds.append(cold_start(lk, cold_cfg))
        finally:
            if sup is not None:
                sup.close()
            emulator.stop()
    cold, replaced = sorted(colds)[len(colds) // 2], sorted(takeovers)[len(takeovers) // 2]
    checks = (Check("kill -9 of a worker -> a replacement available in LiveKit vs a cold "
                    "worker start", replaced, cold, "s", 0.1,
                    note="a standby (registered, reporting full) takes the slot"),)
    info = ((f"median of {sizes.repeats}: takeovers {', '.join(f'{s:.3f}' for s in takeovers)} s; "
             f"cold starts {', '.join(f'{s:.2f}' for s in colds)} s"),
            (f"a standby costs {pss / 2**20:.0f} MiB "
             "(PSS of its tree at the kill, num_idle_processes = 1)"))
    return Section("worker replacement (standby takeover vs cold start)", checks, info)
