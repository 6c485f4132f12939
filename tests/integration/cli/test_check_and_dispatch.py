"""`voiceops check` and `voiceops dispatch` as an operator runs them, against a LiveKit server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from voiceops import config as config_mod
from voiceops.testing.harness import free_port, write_toml

pytestmark = [pytest.mark.process, pytest.mark.livekit]


def run_cli(tmp: Path, *args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIVEKIT_API_SECRET", "DEEPGRAM_API_KEY", "CREDENTIALS_DIRECTORY")}
    if secret is not None:
        env["LIVEKIT_API_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "voiceops", *args, "--config",
                           str(tmp / "voiceops.toml"), "--socket", str(tmp / "absent.sock")],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp, check=False)


def config(tmp: Path, lk: Any, voice: dict[str, str] | None = None) -> None:
    write_toml(tmp / "voiceops.toml", {
        "livekit": {"url": lk.url, "api_key": lk.api_key},
        "letta": {"base_url": f"http://127.0.0.1:{free_port()}"},  # nothing listens there
        "proxy": {"listen": f"127.0.0.1:{free_port()}"},
        "voice": voice or {"stt": "pocketsphinx", "tts": "piper"},
    })


def test_check_passes_with_the_right_credentials(tmp_path: Path, livekit_server: Any) -> None:
    """Config valid and LiveKit accepting our key and secret: every line ok, exit 0."""
    config(tmp_path, livekit_server)
    done = run_cli(tmp_path, "check", "--no-letta", secret=livekit_server.api_secret)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["ok"] * 5
    assert "load: LiveKit offers no job to a worker at load >= 0.7" in done.stdout


def test_check_names_each_problem(tmp_path: Path, livekit_server: Any) -> None:
    """A wrong secret and an unreachable Letta are each one FAIL line with the reason; exit 1."""
    config(tmp_path, livekit_server)
    done = run_cli(tmp_path, "check", secret="not-the-secret")
    assert done.returncode == 1
    assert "FAIL  livekit:" in done.stdout and "refused the credentials" in done.stdout
    assert "FAIL  letta:" in done.stdout and "cannot reach" in done.stdout
    assert "not-the-secret" not in done.stdout + done.stderr


def test_check_without_a_secret_says_how_to_set_one(tmp_path: Path, livekit_server: Any) -> None:
    """No secret anywhere: the LiveKit line says which variable or key to set."""
    config(tmp_path, livekit_server)
    done = run_cli(tmp_path, "check", "--no-letta", secret=None)
    assert done.returncode == 1 and "LIVEKIT_API_SECRET" in done.stdout


def test_check_names_a_missing_provider_key(tmp_path: Path, livekit_server: Any) -> None:
    """stt = deepgram without DEEPGRAM_API_KEY: the agent line names the key; exit 1."""
    config(tmp_path, livekit_server, voice={"stt": "deepgram", "tts": "piper"})
    done = run_cli(tmp_path, "check", "--no-letta", secret=livekit_server.api_secret)
    assert done.returncode == 1
    assert "FAIL  agent: voice.stt: provider 'deepgram' needs DEEPGRAM_API_KEY" in done.stdout


def test_dispatch_without_a_proxy_says_so(tmp_path: Path, livekit_server: Any) -> None:
    """`voiceops dispatch` with nothing running names the proxy it could not reach."""
    config(tmp_path, livekit_server)
    done = run_cli(tmp_path, "dispatch", "r1", secret=None)
    assert done.returncode == 1 and "did not answer" in done.stdout, done.stdout


def test_check_sandbox_uses_what_run_sandbox_uses(tmp_path: Path, livekit_server: Any) -> None:
    """`check --sandbox --no-letta` with no secret configured uses the sandbox's dev secret, as
    `run --sandbox` does, and passes against a server with LiveKit's dev credentials; the room
    count reads "1 room"."""
    if livekit_server.api_secret != config_mod.SANDBOX_API_SECRET:
        pytest.skip("the server does not use LiveKit's dev secret")
    config(tmp_path, livekit_server)
    asyncio.run(_create_room(livekit_server, "check-room"))
    done = run_cli(tmp_path, "check", "--sandbox", "--no-letta", secret=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(1 room)" in done.stdout, done.stdout
    assert "HMAC key" not in done.stderr


def test_check_sandbox_names_letta_and_how_to_skip_it(tmp_path: Path,
                                                      livekit_server: Any) -> None:
    """With Letta checked and nothing at letta.base_url, the one problem is Letta's, named with
    the way to skip it, in the singular."""
    if livekit_server.api_secret != config_mod.SANDBOX_API_SECRET:
        pytest.skip("the server does not use LiveKit's dev secret")
    config(tmp_path, livekit_server)
    done = run_cli(tmp_path, "check", "--sandbox", secret=None)
    assert done.returncode == 1
    assert "FAIL  letta:" in done.stdout and "--no-letta" in done.stdout
    assert "1 problem: letta" in done.stdout, done.stdout


async def _create_room(lk: Any, name: str) -> None:
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
        await client.room.create_room(api.CreateRoomRequest(name=name))
