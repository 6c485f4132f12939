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
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from voiceops.agent.letta.options import LettaBrainOptions
from voiceops.letta_standin.state import SAMPLE_AGENTS
from voiceops.testing.procs import ServerProcess, free_port

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

    def state(self) -> dict[str, Any]:
        """The stand-in's GET /standin/state (skips the test on a real server)."""
        if not self.is_standin:
            pytest.skip(REAL_SERVER_SKIP)
        with urllib.request.urlopen(self.base_url + "/standin/state", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def brain_options(self, **overrides: Any) -> LettaBrainOptions:
        return LettaBrainOptions(base_url=self.base_url, api_key=self.api_key, **overrides)


def start_standin(workdir: Path) -> tuple[ServerProcess, LettaServer]:
    """``python -m voiceops.letta_standin`` on a free port, ready when /v1/health/ answers."""
    port = free_port()
    proc = ServerProcess("letta-standin", [sys.executable, "-m", "voiceops.letta_standin",
                                           "--host", "127.0.0.1", "--port", str(port)],
                         workdir, port, ready_path="/v1/health/")
    proc.start(timeout_s=START_TIMEOUT_S)
    return proc, LettaServer(proc.url, None, True, tuple(a[0] for a in SAMPLE_AGENTS), proc.pid)


def _stub_model(client: Any) -> str:
    wanted = os.environ.get("LETTA_TEST_MODEL", "")
    handles: list[str] = [m.handle for m in client.models.list() if getattr(m, "handle", None)]
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
    with tempfile.TemporaryDirectory(prefix="voiceops-letta-") as workdir:
        proc, server = start_standin(Path(workdir))
        try:
            yield server
        finally:
            proc.stop(timeout_s=STOP_TIMEOUT_S)
            assert server.pid is not None and not psutil.pid_exists(server.pid), \
                "the Letta stand-in outlived its stop"


@pytest.fixture
def letta_faults(letta_server: LettaServer) -> Iterator[StandinFaults]:
    """The stand-in's fault knobs, all cleared after the test (skips on a real server)."""
    faults = letta_server.faults
    if not letta_server.is_standin:
        pytest.skip(REAL_SERVER_SKIP)
    yield faults
    faults.clear()
