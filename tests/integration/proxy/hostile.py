"""Hostile HTTP requests for the proxy fuzz test: raw bytes, so nothing a client library would
normalise (methods, paths, charsets, nesting, huge numbers, origins, partial bodies) is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "post", "PROPFIND",
           "G\x7fT")
# /api/dispatches/{id} is left out: without a supervisor it is rightly 503 (no timeline source).
PATHS = ("/api/dispatch-agent", "/api/token", "/api/agents", "/livekit/webhook", "/healthz",
         "/readyz", "/debug", "/api/", "/", "/api/token/../token",
         "/%ff%fe", "/api/dispatch-agent?room=x&room=y", "/" + "a" * 3000, "/api/\u00e9t\u00e9",
         "//api//token", "/api/dispatch-agent#frag", "*")
ORIGINS = (None, None, "http://127.0.0.1:9000", "http://evil.example", "null", "\u00ff\u00fe",
           "http://127.0.0.1:9000/", "x" * 2000)
TYPES = (None, "application/json", "application/json; charset=utf-8",
         "application/json; charset=klingon", "application/json; charset=utf-16",
         "text/plain; charset=latin-1", "application/webhook+json; charset=bogus",
         "multipart/form-data; boundary=x", "application/x-www-form-urlencoded")
FIELDS = ("room", "identity", "name", "agent_id", "metadata", "extra", "voiceops_probe", "")


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(10 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(("r1", "agent-AJ_abc", "voiceops-probe-x-1", "", "a" * 200, "\x00\x1f",
                           "\ud800", "room with spaces", "\u00e9"))
    if kind == 1:
        return rng.choice((0, -1, 10**18, 2**63, 1.5, float("1e308")))
    if kind == 2:
        return rng.choice((None, True, False))
    if kind in (3, 4, 5):
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(1, 30)))
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def body(rng: random.Random) -> bytes:  # noqa: PLR0911 - one return per kind of body
    """One hostile body."""
    kind = rng.randrange(12)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 400))
    if kind == 1:
        n = rng.randrange(900, 60000)
        return b"[" * n + b"]" * n
    if kind == 2:
        n = rng.randrange(400, 20000)
        return b'{"room":' * n + b"1" + b"}" * n
    if kind == 3:
        return b'{"room": "r", "metadata": {"n": ' + b"9" * rng.randrange(4301, 20000) + b"}}"
    if kind == 4:
        return b'{"room": ' + b"1" * rng.randrange(4301, 9000) + b"}"
    if kind == 5:
        return json.dumps({"room": "r1"}).encode("utf-16")
    if kind == 6:
        return b'{"room": "\xff\xfe", "identity": "x"}'
    if kind == 7:
        return b""
    if kind == 8:
        return b'{"metadata": ' + b'{"a":' * 600 + b"1" + b"}" * 600 + b', "room": "r1"}'
    obj = {rng.choice(FIELDS): _value(rng) for _ in range(rng.randrange(1, 5))}
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


@dataclass
class Request:
    raw: bytes
    partial: bool = False  # the client hangs up before the body is complete


def request(rng: random.Random, host: str) -> Request:
    method, path = rng.choice(METHODS), rng.choice(PATHS)
    payload = body(rng) if rng.random() < 0.9 else b""
    headers = [f"Host: {host}", "Connection: close"]
    origin = rng.choice(ORIGINS)
    if origin is not None:
        headers.append(f"Origin: {origin}")
    ctype = rng.choice(TYPES)
    if ctype is not None:
        headers.append(f"Content-Type: {ctype}")
    if rng.random() < 0.2:
        headers.append(rng.choice(("Authorization: Bearer x", "Authorization: \u00ff",
                                   "Authorization: Basic Zm9v", "Authorization: eyJ.x.y")))
    partial = rng.random() < 0.05
    if rng.random() < 0.1 and not partial:
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (payload[:7], payload[7:]) if c)
        headers.append("Transfer-Encoding: chunked")
        data = chunked + rng.choice((b"0\r\n\r\n", b"zz\r\n", b"5\r\nab"))
    else:
        length = len(payload) + (rng.randrange(1, 1000) if partial else 0)
        headers.append(f"Content-Length: {length if rng.random() < 0.97 else '-1'}")
        data = payload
    head = f"{method} {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return Request(head.encode("utf-8", "surrogateescape") + data, partial)


async def send(host: str, port: int, req: Request, timeout_s: float = 15.0) -> int | None:
    """The answer's status code; None when the server closed without one (a partial request)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(req.raw)
        await writer.drain()
        if req.partial:
            return None  # hang up mid-body
        line = await asyncio.wait_for(reader.readline(), timeout_s)
        if not line:
            return None
        return int(line.split()[1])
    except (ConnectionError, IndexError, ValueError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def held_open_s(host: str, port: int, data: bytes, limit_s: float) -> float:
    """Send ``data`` and stall; seconds until the server closes the connection (or ``limit_s``)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    start = loop.time()
    try:
        writer.write(data)
        await writer.drain()
        try:
            async with asyncio.timeout(limit_s):
                while await reader.read(4096):
                    pass  # an answer (408) may come first; then the close
        except TimeoutError:
            pass
        return loop.time() - start
    finally:
        writer.close()
