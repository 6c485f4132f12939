"""pytest plugin: a Letta server for tests (the stand-in in a subprocess, or $LETTA_BASE_URL).

Register with ``pytest_plugins = ["voiceops.testing.letta"]``. Fixtures:

- ``letta_server`` (module scope): the stand-in on a free port with its sample agents, or,
  when ``LETTA_BASE_URL`` (+ ``LETTA_API_KEY``) is set, that real server with two agents this
  fixture creates on the stub LLM (``scripts/letta-server.sh``) and deletes afterwards. Either
  way the agents answer with :mod:`voiceops.letta_standin.brain`.
- ``letta_faults``: the stand-in's fault knobs, cleared after the test; skips the test on a
  real server (faults are stand-in-only, like the emulator's).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

from voiceops.agent.letta.options import LettaBrainOptions
from voiceops.letta_standin.server import READY_PREFIX
from voiceops.letta_standin.state import SAMPLE_AGENTS

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
REAL_SERVER_SKIP = "fault injection needs the Letta stand-in; LETTA_BASE_URL is a real server"
DEFAULT_EMBEDDING = "openai/text-embedding-3-small"


@dataclass(frozen=True)
class StandinFaults:
    """``POST/DELETE /standin/faults`` (skips the test on a real server)."""

    base_url: str | None

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.base_url is None:
            pytest.skip(REAL_SERVER_SKIP)
        req = urllib.request.Request(self.base_url + "/standin/faults", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read())["faults"])

    def set(self, **faults: Any) -> dict[str, Any]:
        return self._call("POST", faults)

    def clear(self) -> dict[str, Any]:
        return self._call("DELETE")


@dataclass(frozen=True)
class LettaServer:
    base_url: str
    api_key: str | None
    is_standin: bool
    agent_ids: tuple[str, ...]  # agents that answer with the deterministic brain
    pid: int | None = None

    @property
    def agent_id(self) -> str:
        return self.agent_ids[0]

    @property
    def faults(self) -> StandinFaults:
        return StandinFaults(self.base_url if self.is_standin else None)

    def brain_options(self, **overrides: Any) -> LettaBrainOptions:
        return LettaBrainOptions(base_url=self.base_url, api_key=self.api_key, **overrides)


@dataclass
class StandinProcess:
    """``python -m voiceops.letta_standin --port 0`` with its ready line parsed for the URL."""

    proc: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    _log_fd: int = field(default=-1, repr=False)

    def start(self) -> LettaServer:
        self._log_fd, self.log_path = tempfile.mkstemp(prefix="voiceops-letta-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voiceops.letta_standin", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._log_fd, start_new_session=True)
        url = self._ready_line()
        return LettaServer(url, None, True, tuple(a[0] for a in SAMPLE_AGENTS), self.proc.pid)

    def _ready_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline, buf = time.monotonic() + START_TIMEOUT_S, b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"letta stand-in did not start; log:\n{self._log_tail()}")
            if select.select([self.proc.stdout], [], [], left)[0]:
                buf += os.read(self.proc.stdout.fileno(), 4096)
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"unexpected letta stand-in output {line!r}")
        return line[len(READY_PREFIX):].strip()

    def _log_tail(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-4000:]

    def stop(self) -> None:
        """SIGTERM, bounded wait, SIGKILL; fails if anything survives."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._log_fd >= 0:
            os.close(self._log_fd)
            self._log_fd = -1
            os.unlink(self.log_path)
        assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"


def _stub_model(client: Any) -> str:
    wanted = os.environ.get("LETTA_TEST_MODEL", "")
    handles = [m.handle for m in client.models.list() if getattr(m, "handle", None)]
    if wanted:
        return wanted
    stub = [h for h in handles if h.endswith("/stub-model")]
    if not stub:
        raise RuntimeError(f"no stub-model among the real Letta's models {handles}: start it "
                           "with scripts/letta-server.sh, or set LETTA_TEST_MODEL")
    return stub[0]


def real_server_from_env() -> Iterator[LettaServer] | None:
    base_url = os.environ.get("LETTA_BASE_URL", "").rstrip("/")
    if not base_url:
        return None
    return _real_server(base_url, os.environ.get("LETTA_API_KEY") or None)


def _real_server(base_url: str, api_key: str | None) -> Iterator[LettaServer]:
    from letta_client import Letta

    client = Letta(base_url=base_url, api_key=api_key, timeout=60)
    model = _stub_model(client)
    embedding = os.environ.get("LETTA_TEST_EMBEDDING", DEFAULT_EMBEDDING)
    created = [client.agents.create(name=f"voiceops-test-{uuid.uuid4().hex[:8]}", model=model,
                                    embedding=embedding, description="voiceops test agent",
                                    memory_blocks=[{"label": "persona", "value": "a test"}]).id
               for _ in range(2)]
    try:
        yield LettaServer(base_url, api_key, False, tuple(created))
    finally:
        for agent_id in created:
            client.agents.delete(agent_id)
        client.close()


@pytest.fixture(scope="module")
def letta_server() -> Iterator[LettaServer]:
    """A Letta server for a test module: the stand-in, or $LETTA_BASE_URL with fresh agents."""
    real = real_server_from_env()
    if real is not None:
        yield from real
        return
    standin = StandinProcess()
    server = standin.start()
    try:
        yield server
    finally:
        standin.stop()


@pytest.fixture
def letta_faults(letta_server: LettaServer) -> Iterator[StandinFaults]:
    """The stand-in's fault knobs, all cleared after the test (skips on a real server)."""
    faults = letta_server.faults
    if not letta_server.is_standin:
        pytest.skip(REAL_SERVER_SKIP)
    yield faults
    faults.clear()
