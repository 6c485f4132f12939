"""Drive ``voiceops run`` as a real subprocess: config, control socket, /metrics, fake
NOTIFY_SOCKET."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from voiceops.testing.procs import free_port, terminate
from voiceops.testing.waiting import wait_for

FAKE = [sys.executable, "-m", "voiceops.testing.fakechild"]
__all__ = ["FAKE", "NotifyListener", "Supervisor", "assert_gone", "free_port", "wait_for",
           "write_config", "write_toml"]


def toml_value(v: Any) -> str:
    return json.dumps(v)  # JSON scalars and string lists are valid TOML


def write_config(path: Path, *, workers: dict[str, Any], proxy: dict[str, Any] | None = None,
                 metrics_port: int) -> Path:
    # No standby unless a test asks: its takeover would change what most tests watch
    # (backoffs, crash loops, orphans of worker-0); tests/process/supervisor/test_standby.py.
    workers = {"standby": 0, **workers}
    lines = ["[workers]", *(f"{k} = {toml_value(v)}" for k, v in workers.items()), "[proxy]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (proxy or {"enabled": False}).items()]
    lines += ["[metrics]", f'listen = "127.0.0.1:{metrics_port}"']
    lines += ["[heartbeat]", "enabled = false"]  # fake children answer no probe
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


class NotifyListener:
    """A fake systemd NOTIFY_SOCKET: records (monotonic time, message) pairs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        return [(t, line) for t, msg in list(self.messages) for line in msg.split("\n")
                if line.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Supervisor:
    """``python -m voiceops run --config PATH`` in its own process group, cwd ``tmp``."""

    def __init__(self, tmp: Path, config: Path, metrics_port: int, *,
                 env: dict[str, str] | None = None, stdout: Any = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.tmp, self.config, self.metrics_port = tmp, config, metrics_port
        self.stderr_path = tmp / "supervisor.stderr"
        self.stdout_path = tmp / "supervisor.stdout"
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        full_env.update({"RUNTIME_DIRECTORY": str(tmp / "run"), "VOICEOPS_TICK_INTERVAL_S": "0.2",
                         "PYTHONUNBUFFERED": "1"})
        # `voiceops run` refuses to start without a LiveKit secret (exit 78); fake children
        # need no LiveKit, so any value does.
        full_env.setdefault("LIVEKIT_API_SECRET", "fake-children-secret")
        full_env.update(env or {})
        # The child writes these files until close(): they outlive this method.
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self._stdout = stdout if stdout is not None else open(self.stdout_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voiceops", "run", "--config", str(config), *extra_args],
            cwd=tmp,
            env=full_env, stdout=self._stdout, stderr=self._stderr, process_group=0)
        self.seen: dict[int, psutil.Process] = {}

    @property
    def socket_path(self) -> str:
        return str(self.tmp / "run" / "control.sock")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None
                ) -> tuple[int, dict[str, Any]]:
        conn = UnixHTTPConnection(self.socket_path)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload,
                         headers={"Content-Type": "application/json"} if payload else {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def status(self) -> dict[str, Any] | None:
        """The status JSON, or None while the control socket is not up yet."""
        try:
            code, data = self.request("GET", "/status")
        except (OSError, http.client.HTTPException, json.JSONDecodeError):
            return None
        self.remember_tree()
        return data if code == 200 else None

    def remember_tree(self) -> None:
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def procs(self, kind: str = "worker") -> list[dict[str, Any]]:
        st = self.status() or {}
        return [p for p in st.get("processes", []) if p["kind"] == kind and not p.get("role")]

    def wait_ready_workers(self, n: int, timeout_s: float = 40.0) -> list[dict[str, Any]]:
        def ok() -> list[dict[str, Any]] | None:
            ws = self.procs()
            return ws if len(ws) == n and all(w["state"] == "ready" for w in ws) else None
        return wait_for(ok, timeout_s, f"{n} ready workers")

    def metric(self, name: str, **labels: str) -> float | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_matches(self, pattern: str) -> list[re.Match[str]]:
        return list(re.finditer(pattern, self.stderr()))

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 60.0) -> int:
        return self.proc.wait(timeout_s)

    def close(self) -> None:
        """Stop it if still running, then assert that nothing it started is left alive."""
        self.remember_tree()
        terminate(self.proc, grace_s=30, kill_wait_s=10)
        self._stderr.close()
        deadline = time.monotonic() + 10
        while (alive := [p for p in self.seen.values() if _alive(p)]) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        for p in alive:  # do not leak into the next test, but fail this one
            p.kill()
        assert not alive, f"processes left behind: {[p.pid for p in alive]}"


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def assert_gone(pids: list[int], timeout_s: float = 10.0) -> None:
    def gone() -> bool:
        return all(not psutil.pid_exists(pid) or
                   psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in pids)
    wait_for(gone, timeout_s, f"pids {pids} gone")


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A config file from ``{"section": {"key": value}}`` (JSON scalars and lists are TOML)."""
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
