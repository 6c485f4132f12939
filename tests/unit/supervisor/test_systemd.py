"""sd_notify: path and abstract sockets, no-op without NOTIFY_SOCKET, the watchdog gate."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceops.supervisor.systemd import Notifier, loop_healthy, watchdog_period_s


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_messages_reach_a_path_socket(receiver: tuple[socket.socket, str]) -> None:
    """READY, STATUS, STOPPING, EXTEND_TIMEOUT_USEC, RELOADING and WATCHDOG are sent as lines."""
    sock, path = receiver
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.ready("workers 1/1 ready")
    assert sock.recv(4096) == b"READY=1\nSTATUS=workers 1/1 ready"
    assert n.extend_timeout(12.5)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=12500000"
    n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.reloading()
    lines = sock.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    assert int(lines[1].split("=")[1]) > 0
    n.close()


def test_status_is_sent_only_on_change(receiver: tuple[socket.socket, str]) -> None:
    """An unchanged STATUS= line is not resent."""
    sock, path = receiver
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.status("a") and not n.status("a") and n.status("b")
    assert sock.recv(4096) == b"STATUS=a"
    assert sock.recv(4096) == b"STATUS=b"


def test_abstract_socket() -> None:
    """An '@name' NOTIFY_SOCKET is an abstract socket."""
    name = f"voiceops-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_noop_without_notify_socket() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and not n.watchdog()


def test_send_failure_is_reported_not_raised(tmp_path: Path) -> None:
    """A vanished notify socket makes notify() return False."""
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).notify("READY=1")


@pytest.mark.parametrize(
    ("env", "period"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "43"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_period_is_half_and_only_for_us(env: dict[str, str], period: float | None) -> None:
    """Ping at half of WATCHDOG_USEC, and only when WATCHDOG_PID is unset or ours."""
    assert watchdog_period_s(env, 42) == period


def test_watchdog_gate_follows_the_reconcile_loop() -> None:
    """Pings are allowed only while the last completed tick is recent."""
    assert not loop_healthy(100.0, None, 5.0)
    assert loop_healthy(100.0, 96.0, 5.0)
    assert loop_healthy(100.0, 95.0, 5.0)
    assert not loop_healthy(100.0, 94.9, 5.0)
