"""A minimal keep-alive HTTP/1.1 JSON caller: the dispatch benchmark's browser.

The proxy's callers are browsers on other machines, so their HTTP stack costs this machine
nothing; aiohttp's client costs ~120 µs of CPU per request here (measured in the concurrency
phase), which a benchmark on 2 cores would charge to the proxy. This caller writes one
request and reads one answer per connection at a time (Content-Length bodies only, as the
proxy answers), so what the proxy leg measures is the proxy.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from .procs import BenchError


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._buf = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0 or self._answer is None:
            return
        head = bytes(self._buf[:end]).decode("latin-1").lower().split("\r\n")
        lengths = [h.split(":", 1)[1] for h in head[1:] if h.startswith("content-length:")]
        if not lengths:
            self._answer.set_exception(BenchError(f"answer without Content-Length: {head}"))
            return
        size = end + 4 + int(lengths[0])
        if len(self._buf) < size:
            return
        status, body = int(head[0].split()[1]), bytes(self._buf[end + 4:size])
        del self._buf[:size]
        self._answer.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError("the server closed the connection"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.transport is None:
            raise ConnectionError("connection closed")
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None


class LeanCaller:
    """POSTs JSON to one server, one keep-alive connection per request in flight (the
    callers bound their own concurrency)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[_Connection] = []

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        request = (f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode("latin-1") + body
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            status, answer = await conn.exchange(request)
        except BaseException:
            if conn.transport is not None:
                conn.transport.close()
            raise
        self._idle.append(conn)
        return status, json.loads(answer)

    async def _connect(self) -> _Connection:
        _, conn = await asyncio.get_running_loop().create_connection(
            _Connection, self._host, self._port)
        return conn

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
