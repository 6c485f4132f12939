"""`python -m voiceops` as a subprocess against a control server running in the test's loop."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from fake_view import FakeView

from voiceops.supervisor import control
from voiceops.supervisor.control import ControlServer

pytestmark = pytest.mark.process

CLI_TIMEOUT_S = 60


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def voiceops(*args: str, cwd: Path) -> Result:
    """Run the CLI to completion (bounded) and check it left no process behind."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VOICEOPS_CONFIG", "RUNTIME_DIRECTORY")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceops", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert not psutil.pid_exists(proc.pid)
    assert psutil.Process().children(recursive=True) == []
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def server(view: FakeView, sock_dir: Path) -> AsyncIterator[ControlServer]:
    srv = await control.start_control_server(view, sock_dir / "control.sock")
    yield srv
    await srv.aclose()


async def test_status_prints_a_table(server: ControlServer, sock_dir: Path) -> None:
    """`status` prints a row per process (state, pid, uptime, restarts, RSS, jobs), pool, alerts."""
    r = await voiceops("status", "--socket", str(server.socket_path), cwd=sock_dir)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "PSS_MIB", "JOBS"]
    assert lines[1].split() == ["worker-0", "ready", "4101", "1h02m", "0", "150.0", "1"]
    assert lines[2].split() == ["worker-1", "backoff", "-", "-", "3", "-", "0"]
    assert "pool: 1/2 workers ready, 0 parked, healthy" in r.out
    assert "WorkerCrashLoop (for 2m" in r.out
    assert "worker-1 exited 3 times in 600 s" in r.out


async def test_status_json(server: ControlServer, view: FakeView, sock_dir: Path) -> None:
    """`status --json` prints the status JSON unchanged."""
    r = await voiceops("status", "--json", "--socket", str(server.socket_path), cwd=sock_dir)
    assert r.code == 0, r.err
    assert json.loads(r.out) == json.loads(json.dumps(view.status()))


async def test_status_finds_the_socket_from_the_config(server: ControlServer,
                                                       sock_dir: Path) -> None:
    """Without --socket, `status --config` uses control.socket from that file."""
    cfg = sock_dir / "voiceops.toml"
    cfg.write_text(f'[control]\nsocket = "{server.socket_path}"\n')
    r = await voiceops("status", "--config", str(cfg), cwd=sock_dir)
    assert r.code == 0, r.err
    assert "worker-0" in r.out


async def test_status_when_not_running(sock_dir: Path) -> None:
    """`status` with no supervisor exits 1 and says so, naming the socket path."""
    r = await voiceops("status", cwd=sock_dir)
    assert r.code == 1
    assert r.out == ""
    want = f"voiceops is not running (no control socket at {sock_dir / 'run' / 'control.sock'})"
    assert r.err.strip() == want


async def test_scale_restart_drain_round_trip(server: ControlServer, view: FakeView,
                                              sock_dir: Path) -> None:
    """`scale`, `restart` and `drain` reach the view through the socket and print the result."""
    sock = str(server.socket_path)
    scaled = await voiceops("scale", "3", "--socket", sock, cwd=sock_dir)
    restarted = await voiceops("restart", "all", "--socket", sock, cwd=sock_dir)
    drained = await voiceops("drain", "worker-0", "--json", "--socket", sock, cwd=sock_dir)
    assert (scaled.code, restarted.code, drained.code) == (0, 0, 0)
    assert scaled.out.splitlines()[0] == "scale 3: scaling to 3 workers"
    assert 'restarting: ["worker-0", "worker-1", "proxy"]' in restarted.out
    assert json.loads(drained.out) == {"success": True, "draining": "worker-0"}
    assert view.calls == [("scale", 3), ("restart", "all"), ("drain", "worker-0")]


@pytest.mark.parametrize(("args", "message"), [
    (("restart", "worker-9"), "voiceops: restart worker-9 failed: no process named 'worker-9'"),
    (("drain", "proxy"), "voiceops: drain proxy failed: proxy: only workers can be drained"),
    (("scale", "-1"), "voiceops: scale -1 failed: count: must be >= 0"),
])
async def test_refused_commands_exit_1_with_the_reason(server: ControlServer, sock_dir: Path,
                                                       args: tuple[str, ...],
                                                       message: str) -> None:
    """A refused control command exits 1 and prints the supervisor's reason on stderr."""
    r = await voiceops(*args, "--socket", str(server.socket_path), cwd=sock_dir)
    assert r.code == 1
    assert r.err.startswith(message)


@pytest.mark.parametrize("command", [("run",), ("status",)])
async def test_bad_config_exits_78_naming_the_key(sock_dir: Path,
                                                  command: tuple[str, ...]) -> None:
    """A config with a wrong type makes `run` and `status` exit 78 with the key on stderr."""
    cfg = sock_dir / "bad.toml"
    cfg.write_text('[workers]\ncount = "x"\n')
    r = await voiceops(*command, "--config", str(cfg), cwd=sock_dir)
    assert r.code == 78
    assert "workers.count" in r.err
    assert "Traceback" not in r.err
