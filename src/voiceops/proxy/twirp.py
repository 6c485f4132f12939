"""A lean Twirp client for the proxy's LiveKit calls: keep-alive HTTP/1.1 connections over
asyncio protocols, protobuf in and out, the Authorization header from the signing cache.

livekit-api's client (an aiohttp request, a JWT per call) cost ~250 us of CPU per call here,
as much as the rest of a dispatch; this one ~70 us (bench/README.md). It speaks the same wire
format (tests/unit/proxy/test_twirp_wire.py compares it with livekit-api's on one server) and
fails the same way: :class:`livekit.api.TwirpError` for an error answer (a 4xx or 5xx, no
failover, as ``LiveKitAPI(failover=False)``), :class:`UpstreamGone` when the connection fails.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import uuid
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from google.protobuf.message import Message
from livekit import api

from .twirp_http import Answer, ResponseReader, UpstreamGone

M = TypeVar("M", bound=Message)
USER_AGENT = "voiceops-proxy"
MAX_CONNECTIONS = 100  # as aiohttp's connector: in flight to LiveKit at once
MAX_IDLE = 32  # keep-alive connections kept for the next calls
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")  # what aiohttp's .json() accepts


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time, then back to the pool if reusable."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._reader: ResponseReader | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self.usable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def exchange(self, payload: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._waiter is None
        self._reader = ResponseReader()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        reader, waiter = self._reader, self._waiter
        if reader is None or waiter is None or waiter.done():
            self._broken()  # bytes nobody asked for: the connection is out of step
            return
        try:
            answer = reader.feed(data)
        except UpstreamGone as exc:
            self._fail(exc)
            return
        if answer is not None:
            self._reader, self._waiter = None, None
            if not answer.keep_alive:
                self._broken()
            waiter.set_result(answer)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def close(self) -> None:
        self._broken()

    def _end(self) -> None:
        self.usable = False
        reader = self._reader
        answer = reader.feed_eof() if reader is not None else None
        if answer is not None and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(answer)
            self._reader, self._waiter = None, None
        else:
            self._fail(UpstreamGone("LiveKit closed the connection before answering"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._reader, self._waiter = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._broken()

    def _broken(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.close()


class TwirpClient:
    """``call(service, method, request, response_class, authorization)`` against one server."""

    def __init__(self, http_url: str, *, max_connections: int = MAX_CONNECTIONS,
                 max_idle: int = MAX_IDLE, ssl_context: ssl.SSLContext | None = None) -> None:
        url = urlsplit(http_url)
        scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
        if scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {http_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if scheme == "https" else None
        self._base = url.path.rstrip("/") + "/twirp/livekit."
        self._host_line = f"Host: {url.netloc}\r\n"
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self.connections_made = 0

    async def call(self, service: str, method: str, request: Message, response_class: type[M],
                   authorization: str) -> M:
        body = request.SerializeToString()
        head = (f"POST {self._base}{service}/{method} HTTP/1.1\r\n{self._host_line}"
                f"User-Agent: {USER_AGENT}\r\nContent-Type: application/protobuf\r\n"
                f"Authorization: {authorization}\r\nX-Livekit-Request-Id: {uuid.uuid4()}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        answer = await self._exchange(head.encode("latin-1") + body)
        if answer.status == 200:
            return response_class.FromString(answer.body)
        raise server_error(answer)

    async def _exchange(self, payload: bytes) -> Answer:
        async with self._slots:
            conn = self._take_idle() or await self._connect()
            try:
                answer = await conn.exchange(payload)
            except BaseException:
                conn.close()  # cancelled or failed mid-exchange: its answer may still come
                raise
            if conn.usable and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return answer

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections still open (one the server closed no longer counts)."""
        return sum(1 for conn in self._idle if conn.usable)

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        factory: Callable[[], _Connection] = _Connection
        try:
            _, conn = await loop.create_connection(
                factory, self._host, self._port, ssl=self._ssl,
                server_hostname=self._host if self._ssl else None)
        except OSError as exc:
            raise UpstreamGone(f"cannot connect to LiveKit: {exc.strerror or exc}") from exc
        self.connections_made += 1
        return conn

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def server_error(answer: Answer) -> api.TwirpError:
    """An error answer as livekit-api raises it (Twirp's JSON body; anything else: unknown)."""
    data: object = {}
    if _JSON_TYPE.match(answer.headers.get("content-type", "")):
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = {}
    if not isinstance(data, dict):
        data = {}
    return api.TwirpError(data.get("code", "unknown"), data.get("msg", ""),
                          status=answer.status, metadata=data.get("meta"))
