"""The event socket: a unix datagram socket children send :mod:`voiceops.events` to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from voiceops.events import MAX_DATAGRAM_BYTES

RCVBUF_BYTES: Final = 4 * 1024 * 1024
log = logging.getLogger("voiceops.supervisor.events")


def runtime_dir(env: dict[str, str] | None = None) -> Path:
    """``$RUNTIME_DIRECTORY`` (its first entry), else ``./run``."""
    env = dict(os.environ) if env is None else env
    first = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(first) if first else Path("run")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("event_socket_error error=%s", exc)


def _bind(path: Path) -> socket.socket:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # a stale socket from a previous run; datagram sockets cannot be probed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class EventSocket:
    """Receives datagrams with asyncio; :meth:`aclose` closes it and removes the file."""

    def __init__(self, path: Path, transport: asyncio.DatagramTransport) -> None:
        self.path = path
        self._transport = transport

    @classmethod
    async def open(cls, path: Path, on_datagram: Callable[[bytes], None]) -> EventSocket:
        sock = _bind(path)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_datagram),
                                                           sock=sock)
        return cls(path, transport)

    async def aclose(self) -> None:
        self._transport.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


__all__ = ["EventSocket", "MAX_DATAGRAM_BYTES", "runtime_dir"]
