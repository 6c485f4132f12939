"""pytest plugin: a LiveKit server for tests (the emulator in a subprocess, or $LIVEKIT_URL).

Register with `pytest_plugins = ["voiceops.testing.livekit.pytest_plugin"]`. Fixtures:
`livekit_server` (one emulator per test), `livekit_server_session` (one per session) and
`livekit_server_factory` (start one with extra CLI flags, e.g. "--availability-timeout-s", "2").
With LIVEKIT_URL (+ LIVEKIT_API_KEY, LIVEKIT_API_SECRET) set they yield that real server, and
fault injection skips the test.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from voiceops.emulator.options import DEV_API_KEY, DEV_API_SECRET
from voiceops.emulator.server import READY_PREFIX
from voiceops.testing.procs import terminate

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
REAL_SERVER_SKIP = (
    "fault injection needs the voiceops emulator; LIVEKIT_URL points at a real server"
)


def _admin_call(http_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        http_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise AssertionError(f"{method} {path} -> {exc.code}: {detail}") from None


@dataclass(frozen=True)
class FaultsClient:
    """Sets and clears the emulator's faults over HTTP (skips the test on a real server)."""

    http_url: str | None

    def _url(self) -> str:
        if self.http_url is None:
            pytest.skip(REAL_SERVER_SKIP)
        return self.http_url

    def set(self, **faults: Any) -> dict[str, Any]:
        answer = _admin_call(self._url(), "POST", "/emulator/faults", faults)
        current: dict[str, Any] = answer["faults"]
        return current

    def clear(self) -> dict[str, Any]:
        current: dict[str, Any] = _admin_call(self._url(), "DELETE", "/emulator/faults")["faults"]
        return current


@dataclass(frozen=True)
class LiveKitServer:
    url: str
    http_url: str
    api_key: str
    api_secret: str
    is_emulator: bool
    faults: FaultsClient
    pid: int | None = None
    log_path: str | None = None

    def state(self, rooms: Iterable[str] = ()) -> dict[str, Any]:
        """The emulator's /emulator/state JSON, narrowed to ``rooms`` if given (skips the test
        on a real server)."""
        if not self.is_emulator:
            pytest.skip(REAL_SERVER_SKIP)
        query = urllib.parse.urlencode([("room", r) for r in rooms])
        state: dict[str, Any] = _admin_call(
            self.http_url, "GET", "/emulator/state" + (f"?{query}" if query else ""))
        return state

    def log_text(self) -> str:
        if self.log_path is None:
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()


def real_server_from_env() -> LiveKitServer | None:
    url = os.environ.get("LIVEKIT_URL")
    if not url:
        return None
    http_url = url.replace("wss://", "https://").replace("ws://", "http://").rstrip("/")
    return LiveKitServer(
        url=url,
        http_url=http_url,
        api_key=os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY),
        api_secret=os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET),
        is_emulator=False,
        faults=FaultsClient(None),
    )


@dataclass
class EmulatorProcess:
    """`python -m voiceops.emulator --port 0` with its ready line parsed for the port."""

    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    _log_fd: int = field(default=-1, repr=False)

    def start(self) -> LiveKitServer:
        self._log_fd, self.log_path = tempfile.mkstemp(prefix="voiceops-emulator-", suffix=".log")
        cmd = [
            sys.executable,
            "-m",
            "voiceops.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            DEV_API_KEY,
            *self.extra_args,
        ]
        env = {**os.environ, "LIVEKIT_API_SECRET": DEV_API_SECRET}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log_fd, env=env, start_new_session=True
        )
        http_url = self._read_ready_line()
        port = int(http_url.rsplit(":", 1)[1])
        return LiveKitServer(
            url=f"ws://127.0.0.1:{port}",
            http_url=http_url,
            api_key=DEV_API_KEY,
            api_secret=DEV_API_SECRET,
            is_emulator=True,
            faults=FaultsClient(http_url),
            pid=self.proc.pid,
            log_path=self.log_path,
        )

    def _read_ready_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"emulator did not start; log:\n{self._log_tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"unexpected emulator output {line!r}")
        return line[len(READY_PREFIX) :].strip()

    def _log_tail(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-4000:]

    def stop(self) -> None:
        """SIGTERM, bounded wait, then SIGKILL of the group; fails if anything survives. Its
        log goes too: the bench and the fixtures ran it from a temporary file."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        terminate(proc, grace_s=STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._log_fd >= 0:
            os.close(self._log_fd)
            self._log_fd = -1
        Path(self.log_path).unlink(missing_ok=True)
        _, alive = psutil.wait_procs(tree, timeout=STOP_TIMEOUT_S)
        assert not alive, f"emulator left processes behind: {alive}"


ServerFactory = Callable[..., LiveKitServer]


@pytest.fixture
def livekit_server_factory() -> Iterator[ServerFactory]:
    """Start emulators with extra CLI flags: `factory("--availability-timeout-s", "2")`."""
    started: list[EmulatorProcess] = []

    def start(*extra_args: str) -> LiveKitServer:
        real = real_server_from_env()
        if real is not None:
            return real
        emu = EmulatorProcess(tuple(extra_args))
        started.append(emu)
        return emu.start()

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def livekit_server(livekit_server_factory: ServerFactory) -> LiveKitServer:
    """A LiveKit server for one test: a fresh emulator subprocess, or $LIVEKIT_URL."""
    return livekit_server_factory()


def _shared_server() -> Iterator[LiveKitServer]:
    real = real_server_from_env()
    if real is not None:
        yield real
        return
    emu = EmulatorProcess()
    server = emu.start()
    yield server
    emu.stop()


@pytest.fixture(scope="session")
def livekit_server_session() -> Iterator[LiveKitServer]:
    """One LiveKit server shared by the session (clear faults yourself if you set any)."""
    yield from _shared_server()


@pytest.fixture(scope="module")
def livekit_server_module() -> Iterator[LiveKitServer]:
    """One LiveKit server for a test module: gone before the next module's leak checks run."""
    yield from _shared_server()
