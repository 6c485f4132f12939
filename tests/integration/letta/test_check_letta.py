"""`voiceops check` against the Letta server fixture: health, version, the default agent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voiceops.testing.harness import free_port, write_toml

pytestmark = [pytest.mark.process, pytest.mark.livekit, pytest.mark.letta]


def check(tmp: Path, lk: Any, letta: Any, agent_id: str) -> subprocess.CompletedProcess[str]:
    write_toml(tmp / "voiceops.toml", {
        "livekit": {"url": lk.url, "api_key": lk.api_key},
        "letta": {"base_url": letta.base_url, "default_agent_id": agent_id},
        "proxy": {"listen": f"127.0.0.1:{free_port()}"},
    })
    env = {**os.environ, "LIVEKIT_API_SECRET": lk.api_secret}
    if letta.api_key:
        env["LETTA_API_KEY"] = letta.api_key
    return subprocess.run([sys.executable, "-m", "voiceops", "check", "--config",
                           str(tmp / "voiceops.toml"), "--socket", str(tmp / "absent.sock")],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp, check=False)


def _letta_line(done: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in done.stdout.splitlines() if "letta:" in line)


def test_check_reports_letta_up_with_its_version_and_default_agent(
        tmp_path: Path, livekit_server_module: Any, letta_server: Any) -> None:
    """Letta healthy and the default agent known: an ok line naming version and agent."""
    done = check(tmp_path, livekit_server_module, letta_server, letta_server.agent_id)
    line = _letta_line(done)
    assert line.startswith("ok") and "version 0.16.8" in line and "default agent '" in line, \
        done.stdout + done.stderr


def test_check_fails_on_a_default_agent_letta_does_not_know(
        tmp_path: Path, livekit_server_module: Any, letta_server: Any) -> None:
    """An unknown letta.default_agent_id is a FAIL naming the key; exit 1."""
    done = check(tmp_path, livekit_server_module, letta_server,
                 "agent-00000000-0000-4000-8000-000000000000")
    assert done.returncode == 1
    assert _letta_line(done).startswith("FAIL") and "letta.default_agent_id:" in done.stdout


@pytest.mark.faults
def test_check_fails_while_letta_answers_503(tmp_path: Path, livekit_server_module: Any,
                                             letta_server: Any, letta_faults: Any) -> None:
    """A sick Letta (503 on every route) is a FAIL with the status."""
    letta_faults.set(down_status=503)
    done = check(tmp_path, livekit_server_module, letta_server, "")
    assert done.returncode == 1 and "answered HTTP 503" in _letta_line(done)
