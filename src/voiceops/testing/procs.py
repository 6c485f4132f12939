"""Run one external test server (Prometheus, Alertmanager) as a subprocess, and shut it down.

Output goes to a log file, never a pipe, so a chatty server can never block on a full pipe;
the log's tail is quoted in every error. Each server runs in its own session so a stop
signal never reaches the test runner.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from voiceops.testing.waiting import wait_for

T = TypeVar("T")
LOG_TAIL_CHARS = 2000


class ServerError(RuntimeError):
    """A test server failed to start, answered with an error, or a wait ran out of time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (servers here cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, *, timeout_s: float = 5.0, body: Any = None) -> Any:
    """GET (or POST ``body`` as JSON) and decode the JSON answer, also from an HTTP error."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:  # Prometheus puts the reason in a JSON error body
        raw = exc.read()
    return json.loads(raw) if raw.strip() else None


def poll_until(probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.2,
               what: str) -> T:
    """The shared deadline poll for a server: until ``probe`` returns something other than None.

    Connection and decoding errors count as "not yet"; a ServerError from ``probe`` (the server
    exited, Prometheus rejected the query) ends the wait at once; the deadline raises ServerError.
    """
    found = wait_for(probe, timeout_s, what, interval_s, retry_on=(OSError, ValueError),
                     error=ServerError, done=lambda value: value is not None)
    assert found is not None
    return found


class ServerProcess:
    """One server subprocess listening on ``127.0.0.1:port``, with readiness at ``ready_path``."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, port: int,
                 ready_path: str = "/-/ready") -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.port = port
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Spawn the server and wait until its readiness endpoint answers 200."""
        if self._proc is not None:
            raise ServerError(f"{self.name} already started")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.workdir,
                                          start_new_session=True)
        try:
            poll_until(self._ready, timeout_s=timeout_s, what=f"{self.name} at {self.url}")
        except ServerError:
            self.stop()
            raise

    def _ready(self) -> bool | None:
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerError(f"{self.name} exited with {self._proc.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2.0) as response:
                return True if response.status == 200 else None
        except urllib.error.HTTPError:  # 503 while starting
            return None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def stop(self, *, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; reaps the process. Idempotent."""
        return None if self._proc is None else terminate(self._proc, grace_s=timeout_s)


def terminate(proc: subprocess.Popen[Any], *, grace_s: float,
              kill_wait_s: float | None = None) -> int | None:
    """SIGTERM, up to ``grace_s`` to exit, then SIGKILL of its process group; reaped.

    ``proc`` must run in its own session (``start_new_session``/``process_group=0``): the
    group is then only its own. A process that already exited is just reaped.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s if kill_wait_s is None else kill_wait_s)
    return proc.returncode
