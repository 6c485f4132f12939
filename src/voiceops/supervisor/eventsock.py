"""The event socket: a unix datagram socket children send :mod:`voiceops.events` to.

``SO_PASSCRED`` makes the kernel attach each sender's pid (SCM_CREDENTIALS, not forgeable by
an unprivileged sender), so the supervisor can accept events only from its own children's
process trees, whatever user runs the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final

from voiceops.events import MAX_DATAGRAM_BYTES

RCVBUF_BYTES: Final = 4 * 1024 * 1024
_UCRED: Final = struct.Struct("iII")  # struct ucred: pid, uid, gid
_ANCILLARY_BYTES: Final = socket.CMSG_SPACE(_UCRED.size)
_BATCH: Final = 256  # datagrams read per wake-up before yielding to the loop
OnDatagram = Callable[[bytes, int], None]  # (data, sender pid; 0 when the kernel gave none)
log = logging.getLogger("voiceops.supervisor.events")


def runtime_dir(env: dict[str, str] | None = None) -> Path:
    """``$RUNTIME_DIRECTORY`` (its first entry), else ``./run``."""
    env = dict(os.environ) if env is None else env
    first = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(first) if first else Path("run")


def sender_pid(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The pid in an SCM_CREDENTIALS message, else 0."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS \
                and len(data) >= _UCRED.size:
            return int(_UCRED.unpack_from(data)[0])
    return 0


def _bind(path: Path) -> socket.socket:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # a stale socket from a previous run; datagram sockets cannot be probed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class EventSocket:
    """Receives datagrams on the loop with their sender's pid; :meth:`aclose` closes the socket
    and removes the file."""

    def __init__(self, path: Path, sock: socket.socket, on_datagram: OnDatagram) -> None:
        self.path = path
        self._sock = sock
        self._on_datagram = on_datagram

    @classmethod
    async def open(cls, path: Path, on_datagram: OnDatagram) -> EventSocket:
        sock = _bind(path)
        self = cls(path, sock, on_datagram)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return self

    def _readable(self) -> None:
        for _ in range(_BATCH):
            try:
                data, ancillary, _flags, _addr = self._sock.recvmsg(MAX_DATAGRAM_BYTES + 1,
                                                                    _ANCILLARY_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("event_socket_error error=%s", exc)
                return
            self._on_datagram(data, sender_pid(ancillary))

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError, RuntimeError):  # already closed / loop gone
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


__all__ = ["MAX_DATAGRAM_BYTES", "EventSocket", "OnDatagram", "runtime_dir", "sender_pid"]
