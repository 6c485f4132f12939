"""The dispatch fast lane: a plain ``POST /api/dispatch-agent`` is answered straight from the
connection; every other request, and any connection once it sends one, goes to aiohttp.

Why: issue 12 wants a proxied dispatch within 1.3x of one raw ``CreateDispatch``. aiohttp's
server machinery (parser, request object, middleware chain, response writer) cost as much as
the LiveKit call itself here; a protocol that reads a complete plain request from its buffer
costs a quarter of that (bench/README.md). What it does is the aiohttp route's work, through
the same functions: the origin, API-key and body checks (:mod:`.middleware`,
:func:`.route_dispatch.checked_request`), the rate limiter, the dispatcher, the answer body,
the failure answer and event (:func:`.middleware.failure`), the ``dispatch_created`` event.

A request is plain when it arrived whole (head and body in the buffer), names exactly this
route over HTTP/1.1 with a Content-Length within ``proxy.max_body_bytes``, has no
Transfer-Encoding, Expect, Upgrade or unusual Connection header, no repeated header, and
would pass every check. Anything else — a body still on its way, a bad key, a refused origin,
a body that fails validation, a rate limit hit — is handed, bytes untouched, to aiohttp's own
handler for this connection, which answers it exactly as before (and keeps the connection).
The checks before the limiter are pure, so a handed request is never counted twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from .context import CTX, DISPATCH_PATH
from .dispatcher import DispatchResult
from .errors import ApiError
from .middleware import check_api_key, failure, internal_error
from .route_dispatch import FIELDS, announce, answer, checked_request
from .services import SERVICES
from .validation import parse_json_object

logger = logging.getLogger("voiceops.proxy")
REQUEST_LINE = f"POST {DISPATCH_PATH} HTTP/1.1".encode()
MAX_HEAD_BYTES = 8190  # aiohttp's own line limit; a longer head is its to refuse
PAUSE_BYTES = 64 * 1024  # buffered while a dispatch is in flight before reading pauses
# Answered dispatches are announced (event + log line) together, this long after the first
# of them: not in the moment the caller, the proxy and the supervisor would all want the CPU
# at once (measured: 1.5x -> 1.3x one raw CreateDispatch on this 2-core machine).
ANNOUNCE_AFTER_S = 0.002
_UNUSUAL = ("transfer-encoding", "expect", "upgrade")
_JSON = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class PlainRequest:
    headers: dict[str, str]  # lower-case names
    body: bytes
    size: int  # bytes it takes from the start of the buffer


def plain_request(buf: bytes | bytearray, max_body_bytes: int) -> PlainRequest | None:
    """The complete plain dispatch request at the start of ``buf``, or None (aiohttp's)."""
    end = buf.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
    if end < 0 or not buf.startswith(REQUEST_LINE + b"\r\n"):
        return None
    headers: dict[str, str] = {}
    for line in bytes(buf[len(REQUEST_LINE) + 2:end]).split(b"\r\n"):
        name, sep, value = line.partition(b":")
        key = name.decode("latin-1").lower()
        if not sep or not name or name != name.strip() or key in headers:
            return None
        headers[key] = value.strip().decode("latin-1")
    length = headers.get("content-length", "")
    if (any(k in headers for k in _UNUSUAL) or not length.isdigit()
            or headers.get("connection", "keep-alive").lower() != "keep-alive"):
        return None
    size = end + 4 + int(length)
    if not 0 < int(length) <= max_body_bytes or len(buf) < size:
        return None
    return PlainRequest(headers, bytes(buf[end + 4:size]), size)


class Lane:
    """The fast lane of one listening socket: its connections and where to hand them."""

    def __init__(self, app: web.Application, aiohttp_handler: Callable[[], asyncio.Protocol]
                 ) -> None:
        self.app = app
        self.aiohttp_handler = aiohttp_handler
        self.connections: set[LaneConnection] = set()
        self.served = 0  # dispatches answered here
        self.handed = 0  # connections handed to aiohttp
        self._date = (0, "")
        self._announce: list[tuple[DispatchResult, float]] = []
        self._announce_at: asyncio.TimerHandle | None = None
        self.stopping = False

    def protocol(self) -> LaneConnection:
        return LaneConnection(self)

    def date(self) -> str:
        now = int(time.time())
        if now != self._date[0]:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    def announce(self, result: DispatchResult, latency_s: float) -> None:
        self._announce.append((result, latency_s))
        if self.stopping:
            self.flush()  # while shutting down, nothing waits: every event goes out at once
        elif self._announce_at is None:
            self._announce_at = asyncio.get_running_loop().call_later(ANNOUNCE_AFTER_S,
                                                                      self.flush)

    def flush(self) -> None:
        """Every answered dispatch's event and log line, oldest first."""
        if self._announce_at is not None:
            self._announce_at.cancel()
            self._announce_at = None
        pending, self._announce = self._announce, []
        for result, latency_s in pending:
            announce(result, latency_s)

    async def shutdown(self, timeout_s: float) -> None:
        """Idle connections closed; dispatches in flight finish (within ``timeout_s``)."""
        self.stopping = True
        self.flush()
        deadline = time.monotonic() + timeout_s
        for conn in list(self.connections):
            conn.close_if_idle()
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # deadline poll: in-flight dispatches end on their own
        for conn in list(self.connections):
            conn.close()
        self.flush()


class LaneConnection(asyncio.Protocol):
    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.busy = False
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._idle: asyncio.TimerHandle | None = None
        self._idle_until = 0.0
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.lane.connections.add(self)
        self._wait_idle()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self.busy:
            self._next()
        elif len(self._buf) > PAUSE_BYTES and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.lane.connections.discard(self)
        self._stop_idle()

    def close_if_idle(self) -> None:
        if not self.busy:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _next(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if not self._buf:
            self._wait_idle()
            return
        t0 = self.lane.app[CTX].clock()
        req = plain_request(self._buf, self.lane.app[CTX].options.max_body_bytes)
        admitted = self._admit(req) if req is not None else None
        if req is None or admitted is None:
            self._hand_over()
            return
        del self._buf[:req.size]
        self.busy = True
        room, metadata = admitted
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(room, metadata, req.headers.get("origin"), t0))

    def _admit(self, req: PlainRequest) -> tuple[str, dict[str, Any]] | None:
        """(room, metadata) when this lane answers the request; None: aiohttp's."""
        ctx = self.lane.app[CTX]
        origin = req.headers.get("origin")
        if origin is not None and not ctx.origin_allowed(origin):
            return None
        try:
            if ctx.secrets.api_keys:
                check_api_key(req.headers.get("authorization", ""), ctx.secrets.api_keys)
            admitted = checked_request(ctx.options, parse_json_object(req.body, FIELDS))
        except ApiError:
            return None
        if ctx.limiter.enabled and not ctx.limiter.check(self._remote()).allowed:
            return None  # a refusal takes no token: aiohttp's own check refuses it again
        return admitted

    async def _dispatch(self, room: str, metadata: dict[str, Any], origin: str | None,
                        t0: float) -> None:
        ctx = self.lane.app[CTX]
        try:
            result = await self.lane.app[SERVICES].dispatcher.dispatch(room, metadata)
        except ApiError as err:
            self._answer(failure(ctx, DISPATCH_PATH, "POST", room, t0, err), origin)
        except Exception:
            logger.exception("unhandled_error path=%s", DISPATCH_PATH)
            self._answer(failure(ctx, DISPATCH_PATH, "POST", room, t0, internal_error()), origin)
        else:
            latency_s = max(0.0, ctx.clock() - t0)
            self._write(200, "OK", _JSON, json.dumps(answer(result)).encode(), origin)
            self.lane.served += 1
            self.lane.announce(result, latency_s)
        finally:
            self.busy = False
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            self._next()

    def _answer(self, response: web.Response, origin: str | None) -> None:
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        body = response.body or b""
        if not isinstance(body, bytes | bytearray):  # a streamed Payload has no place here
            raise TypeError(f"fast-lane response body is {type(body).__name__}, not bytes")
        self._write(response.status, response.reason, headers, bytes(body), origin)

    def _write(self, status: int, reason: str, headers: Mapping[str, str], body: bytes,
               origin: str | None) -> None:
        """As aiohttp writes it, with the edge middleware's CORS headers."""
        if self._transport is None or self._transport.is_closing():
            return  # the client went away; the dispatch stands, as with aiohttp
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
        if origin:
            lines.append(f"Access-Control-Allow-Origin: {origin.rstrip('/')}")
        if not any(k.lower() == "vary" for k in headers):
            lines.append("Vary: Origin")
        lines += [f"Content-Length: {len(body)}", f"Date: {self.lane.date()}",
                  f"Server: {SERVER_SOFTWARE}", "", ""]
        self._transport.write("\r\n".join(lines).encode("latin-1") + body)

    def _hand_over(self) -> None:
        """aiohttp's handler takes the connection, with every byte not yet answered."""
        transport = self._transport
        if transport is None:
            return
        self._stop_idle()
        self.lane.connections.discard(self)
        self.lane.handed += 1
        self._transport = None
        handler = self.lane.aiohttp_handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._buf:
            data, self._buf = bytes(self._buf), bytearray()
            handler.data_received(data)

    def _remote(self) -> str:
        peer = self._transport.get_extra_info("peername") if self._transport else None
        return str(peer[0]) if peer else "unknown"

    def _wait_idle(self) -> None:
        """Between requests the wait is bounded as aiohttp bounds it (proxy's header timeout).
        One timer per connection, moved on when it fires early (no timer per request)."""
        loop = asyncio.get_running_loop()
        self._idle_until = loop.time() + self.lane.app[CTX].options.header_timeout_s
        if self._idle is None:
            self._idle = loop.call_at(self._idle_until, self._idle_check)

    def _idle_check(self) -> None:
        self._idle = None
        if self.busy:
            return  # the answer re-arms the wait
        if asyncio.get_running_loop().time() < self._idle_until:
            self._idle = asyncio.get_running_loop().call_at(self._idle_until, self._idle_check)
        else:
            self.close()

    def _stop_idle(self) -> None:
        """Only on hand-over and loss: a busy connection is never closed by the timer."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
