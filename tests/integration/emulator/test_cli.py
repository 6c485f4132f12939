"""`python -m voiceops.emulator` runs standalone and exits cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from emulator_helpers import assert_no_children_left

pytestmark = [pytest.mark.process]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_exits_cleanly(sig: signal.Signals) -> None:
    """The CLI listens on the given port, answers /, and exits 0 on the signal."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voiceops.emulator",
            "--port",
            str(port),
            "--webhook-url",
            "http://127.0.0.1:9/never",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.strip() == f"voiceops emulator listening on http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.read() == b"OK"
        proc.send_signal(sig)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert_no_children_left()


def test_cli_rejects_bad_options() -> None:
    """An impossible port is refused with exit status 2 and a message naming it."""
    done = subprocess.run(
        [sys.executable, "-m", "voiceops.emulator", "--port", "70000"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"port must be in 0..65535" in done.stderr
