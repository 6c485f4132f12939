"""Config errors are caught at start, named, and exit 78 (issue 11, item 7)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceops.testing.harness import free_port

pytestmark = pytest.mark.process
RUN = (
    "import sys; from voiceops.supervisor.main import run; "
    "sys.exit(run(sys.argv[1], sandbox=sys.argv[2] == '1'))"
)


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run_supervisor(tmp: Path, toml: str, *, sandbox: bool = False,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "voiceops.toml"
    cfg.write_text(toml, encoding="utf-8")
    full_env = {"PATH": "/usr/bin:/bin", "LIVEKIT_API_SECRET": "a-test-secret-0123456789",
                "RUNTIME_DIRECTORY": str(tmp / "run"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", RUN, str(cfg), "1" if sandbox else "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp,
        env=full_env,
        check=False,
    )


def metrics(port: int | None = None) -> str:
    return f'[metrics]\nlisten = "127.0.0.1:{port or free_port()}"\n'


def test_non_utf8_secret_files_exit_78_naming_the_key(tmp_path: Path) -> None:
    """A key file or secret file that is not UTF-8 is a named config error, not a traceback."""
    bad = tmp_path / "keys.bin"
    bad.write_bytes(b"\xff\xfe\x00key\n")
    for key in ("proxy.api_keys_file", "proxy.token_api_keys_file"):
        section, name = key.split(".")
        res = run_supervisor(tmp_path, f'[{section}]\n{name} = "{bad}"\n' + metrics())
        assert res.returncode == 78, res.stderr
        assert res.stderr.strip() == f"voiceops: {key}: {bad} is not UTF-8 text"
    res = run_supervisor(tmp_path, f'[livekit]\napi_secret_file = "{bad}"\n' + metrics(),
                         env={"LIVEKIT_API_SECRET": ""})
    assert res.returncode == 78 and "livekit.api_secret_file: " in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("key", ["proxy.listen", "metrics.listen", "livekit.url",
                                 "letta.base_url"])
def test_taken_ports_exit_78_naming_the_key(tmp_path: Path, taken_port: int, key: str) -> None:
    """proxy.listen, metrics.listen and the sandbox's LiveKit and Letta ports already taken:
    exit 78, key named."""
    toml = {
        "proxy.listen": f'[proxy]\nlisten = "127.0.0.1:{taken_port}"\n' + metrics(),
        "metrics.listen": metrics(taken_port),
        "livekit.url": f'[livekit]\nurl = "ws://127.0.0.1:{taken_port}"\n'
                       f'[letta]\nbase_url = "http://127.0.0.1:{free_port()}"\n'
                       f'[proxy]\nlisten = "127.0.0.1:{free_port()}"\n' + metrics(),
        "letta.base_url": f'[livekit]\nurl = "ws://127.0.0.1:{free_port()}"\n'
                          f'[letta]\nbase_url = "http://127.0.0.1:{taken_port}"\n'
                          f'[proxy]\nlisten = "127.0.0.1:{free_port()}"\n' + metrics(),
    }[key]
    res = run_supervisor(tmp_path, toml, sandbox=key in ("livekit.url", "letta.base_url"))
    assert res.returncode == 78, res.stderr
    assert res.stderr.strip() == f"voiceops: {key}: 127.0.0.1:{taken_port} is already in use"


@pytest.mark.parametrize(("toml", "key"), [
    ("[proxy]\ntoken_ttl_s = inf\n", "proxy.token_ttl_s"),
    ("[proxy]\ntoken_ttl_s = nan\n", "proxy.token_ttl_s"),
    ("[proxy]\ntoken_ttl_s = 1e300\n", "proxy.token_ttl_s"),
    ("[workers]\ndrain_timeout_s = inf\n", "workers.drain_timeout_s"),
    ("[heartbeat]\ninterval_s = -inf\n", "heartbeat.interval_s"),
    ("[monitor]\njob_request_deadline_s = nan\n", "monitor.job_request_deadline_s"),
    ("[workers]\ncount = 100000\n", "workers.count"),
    ("[heartbeat]\ninterval_s = 5\ntimeout_s = 10\n", "heartbeat.timeout_s"),
])
def test_impossible_numbers_exit_78_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    """inf/nan/huge durations and TTLs, more workers than the machine holds: exit 78, key named."""
    res = run_supervisor(tmp_path, toml + metrics())
    assert res.returncode == 78, res.stderr
    assert res.stderr.startswith(f"voiceops: {key}: "), res.stderr


def test_proxy_alone_with_a_taken_port_exits_78(tmp_path: Path, taken_port: int) -> None:
    """python -m voiceops.proxy on a taken proxy.listen exits 78 naming the key (not 1)."""
    cfg = tmp_path / "proxy.toml"
    cfg.write_text(f'[proxy]\nlisten = "127.0.0.1:{taken_port}"\n', encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "voiceops.proxy", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LIVEKIT_API_SECRET": "x" * 32}, check=False)
    assert res.returncode == 78, res.stderr
    assert "(proxy.listen)" in res.stderr
