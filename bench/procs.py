"""The processes the dispatch benchmark runs: the LiveKit emulator and the real proxy.

Each runs in its own session, logs to a file (never a pipe that could fill), and is stopped
with SIGTERM, then SIGKILL of its group after a bounded wait; :func:`assert_gone` then proves
nothing it started is left.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import psutil

from voiceops.emulator.options import DEV_API_SECRET
from voiceops.testing.procs import terminate as stop_group

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
AGENT = "letta-voice-agent"


class BenchError(RuntimeError):
    """A benchmark process failed to start, answered wrongly, or would not stop."""


def write_proxy_config(path: Path, livekit_url: str) -> Path:
    """Loopback on port 0, the emulator's dev key, and a rate limit no benchmark reaches
    (so the limiter still runs on every request, as in production)."""
    path.write_text("\n".join([
        "[livekit]", f'url = "{livekit_url}"', 'api_key = "devkey"', "",
        "[agent]", f'name = "{AGENT}"', "",
        "[letta]", 'base_url = "http://127.0.0.1:9"', "",
        "[proxy]", 'listen = "127.0.0.1:0"', "rate_limit_per_minute = 100000000", "",
    ]), encoding="utf-8")
    return path


class ReadyEvents(Protocol):
    """What ProxyProcess needs of the proxy's event reader (``event_sink.SinkProcess``)."""

    path: str

    def wait_for(self, kind: str, timeout_s: float) -> dict[str, object]: ...


class ProxyProcess:
    """``python -m voiceops.proxy --config PATH``; its address comes from its ready event."""

    def __init__(self, config: Path, events: ReadyEvents, log_path: Path) -> None:
        self.log_path = log_path
        env = {**os.environ, "VOICEOPS_EVENTS": events.path, "VOICEOPS_PROCESS": "proxy",
               "LIVEKIT_API_SECRET": DEV_API_SECRET}
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voiceops.proxy", "--config", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        self.tree = [psutil.Process(self.proc.pid)]
        try:
            ready = events.wait_for("ready", START_TIMEOUT_S)
        except BenchError:
            self.stop()
            raise BenchError(f"proxy not ready; log:\n{self.log_tail()}") from None
        self.url = f"http://{ready['listen']}"

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM, bounded wait, SIGKILL of the group; idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.tree += self.tree[0].children(recursive=True)
            terminate(self.proc)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a bounded wait, then SIGKILL of its process group."""
    stop_group(proc, grace_s=STOP_TIMEOUT_S)


def assert_gone(procs: list[psutil.Process]) -> None:
    """Every process the benchmark started has exited (zombies of ours are reaped first)."""
    _, alive = psutil.wait_procs(procs, timeout=STOP_TIMEOUT_S)
    if alive:
        raise BenchError(f"processes left behind: {[p.pid for p in alive]}")


class FloorHopProcess:
    """``python -m bench.floor_hop``: the bare HTTP hop the proxy is compared with."""

    def __init__(self, livekit_http_url: str, api_key: str, api_secret: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.floor_hop", livekit_http_url, api_key, api_secret],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.tree = [psutil.Process(self.proc.pid)]
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline().strip() if ready else b""
        if not line.isdigit():
            self.stop()
            raise BenchError("the floor hop server did not start")
        self.url = f"http://127.0.0.1:{int(line)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
