"""sd_notify, written in-house: one datagram per message, a no-op outside systemd.

``NOTIFY_SOCKET`` may be a path or an abstract socket (``@name``). The watchdog is pinged
from the event loop, and only while the reconcile loop finishes its ticks: a wedged
supervisor must stop pinging so that systemd aborts and restarts it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("voiceops.supervisor.systemd")


def notify_address(env: Mapping[str, str]) -> str | None:
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr:
        return None
    return "\0" + addr[1:] if addr.startswith("@") else addr


def watchdog_period_s(env: Mapping[str, str], pid: int) -> float | None:
    """Half of ``WATCHDOG_USEC`` (the ping interval), or None when the watchdog is off or not
    ours."""
    usec, wpid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if wpid and (not wpid.isdigit() or int(wpid) != pid):
        return None
    return int(usec) / 2e6


def loop_healthy(now: float, last_tick_done: float | None, max_tick_age_s: float) -> bool:
    """The reconcile loop completed a tick recently enough to vouch for the supervisor."""
    return last_tick_done is not None and now - last_tick_done <= max_tick_age_s


class Notifier:
    """Sends sd_notify messages; remembers the last STATUS= so unchanged ones are not resent."""

    def __init__(self, env: Mapping[str, str] = os.environ, pid: int | None = None) -> None:
        self.address = notify_address(env)
        self.watchdog_period_s = watchdog_period_s(env, os.getpid() if pid is None else pid)
        self._last_status: str | None = None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX,
                                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify_failed error=%s", exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        self._last_status = status
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        if text == self._last_status:
            return False
        self._last_status = text
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def extend_timeout(self, seconds: float) -> bool:
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
