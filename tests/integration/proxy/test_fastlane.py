"""The dispatch fast lane answers a plain dispatch as the aiohttp route does, hands every
other request (and its connection) to aiohttp unchanged, counts a request against the rate
limit once, and keeps aiohttp's connection rules (idle timeout, graceful shutdown)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from proxy_helpers import AGENT_NAME, LETTA_KEY, WAIT_S

from voiceops.config import from_dict
from voiceops.proxy.app import create_app
from voiceops.proxy.context import CTX
from voiceops.proxy.fastlane import Lane
from voiceops.proxy.options import ProxySecrets, options_from_config
from voiceops.proxy.server import listen
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.procs import free_port
from voiceops.testing.waiting import wait_for_async

pytestmark = pytest.mark.livekit
KEY = "lane-key-5b0e3d8c1a7f4e2b9d6c"
ORIGIN = "https://app.example"


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


@dataclasses.dataclass
class LaneProxy:
    lane: Lane
    port: int

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in head[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return Reply(int(head[0].split(" ")[1]), headers, json.loads(body))


def post(body: Any, headers: dict[str, str] | None = None, path: str = "/api/dispatch-agent"
         ) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(data)}\r\n\r\n").encode() + data


def chunked(body: Any) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /api/dispatch-agent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n")


async def ask(proxy: LaneProxy, *requests: bytes) -> list[Reply]:
    """Every request on one new connection, written at once; the replies in order."""
    reader, writer = await proxy.connect()
    writer.write(b"".join(requests))
    replies = [await read_reply(reader) for _ in requests]
    writer.close()
    return replies


def room() -> str:
    return f"lane-{uuid.uuid4().hex[:10]}"


LaneFactory = Callable[..., Awaitable[LaneProxy]]


@pytest.fixture
async def make_lane(event_sink: EventRecorder) -> AsyncIterator[LaneFactory]:
    """The proxy as `serve()` wires it (lane in front of aiohttp), in this process."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(lk: Any, *, api_keys: frozenset[str] = frozenset(),
                   overrides: dict[str, Any] | None = None, **proxy: Any) -> LaneProxy:
        cfg = from_dict({"livekit": {"url": lk.url, "api_key": lk.api_key},
                         "agent": {"name": AGENT_NAME}, "letta": {"base_url": "http://127.0.0.1:9"},
                         "proxy": proxy})
        options = dataclasses.replace(options_from_config(cfg), **(overrides or {}))
        app = create_app(options, ProxySecrets(lk.api_secret, LETTA_KEY, api_keys, frozenset()))
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=options.header_timeout_s)
        await runner.setup()
        lane = Lane(app, runner.server)
        server = await listen(lane, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        app[CTX].set_listen("127.0.0.1", port)

        async def stop() -> None:
            server.close()
            await lane.shutdown(5.0)
            await runner.cleanup()

        stops.append(stop)
        return LaneProxy(lane, port)

    yield make
    for stop in stops:
        await stop()


async def test_lane_answers_as_the_aiohttp_route_does(livekit_server_module, make_lane,
                                                      event_sink):
    """The same dispatch through the lane and through aiohttp (a chunked body): the same
    status, body fields, headers and dispatch_created event."""
    lk = livekit_server_module
    proxy = await make_lane(lk)
    fast_room, slow_room = room(), room()
    fast, = await ask(proxy, post({"room": fast_room}))
    slow, = await ask(proxy, chunked({"room": slow_room}))
    assert (proxy.lane.served, proxy.lane.handed) == (1, 1)
    assert fast.status == slow.status == 200
    assert set(fast.body) == set(slow.body)
    assert {k: v for k, v in fast.body.items() if k not in ("room", "dispatch_id", "message")} \
        == {k: v for k, v in slow.body.items() if k not in ("room", "dispatch_id", "message")}
    assert fast.body["message"].replace(fast_room, "R") == slow.body["message"].replace(slow_room,
                                                                                        "R")
    assert set(fast.headers) == set(slow.headers)
    for name in ("content-type", "vary", "server"):
        assert fast.headers[name] == slow.headers[name]
    for r, reply in ((fast_room, fast), (slow_room, slow)):
        event = await event_sink.wait_for("dispatch_created", room=r)
        assert event["dispatch_id"] == reply.body["dispatch_id"] and event["reused"] is False


async def test_one_connection_moves_from_the_lane_to_aiohttp(livekit_server_module, make_lane):
    """Kept alive: a dispatch and two pipelined ones from the lane (answers in order), then
    another route hands the connection to aiohttp, which answers what follows."""
    lk = livekit_server_module
    proxy = await make_lane(lk)
    rooms = [room() for _ in range(4)]
    reader, writer = await proxy.connect()
    writer.write(post({"room": rooms[0]}))
    first = await read_reply(reader)
    writer.write(post({"room": rooms[1]}) + post({"room": rooms[2]}))
    piped = [await read_reply(reader), await read_reply(reader)]
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + post({"room": rooms[3]}))
    health = await read_reply(reader)
    last = await read_reply(reader)
    writer.close()
    assert [r.body["room"] for r in (first, *piped, last)] == [rooms[0], rooms[1], rooms[2],
                                                               rooms[3]]
    assert all(r.status == 200 for r in (first, *piped, health, last))
    assert (proxy.lane.served, proxy.lane.handed) == (3, 1)


async def test_refusals_are_aiohttps_own_answers(livekit_server_module, make_lane):
    """A missing or wrong key, a refused origin, bad JSON, a reserved room: handed to aiohttp
    and answered in its error shape; an allowed origin is served with its CORS header."""
    lk = livekit_server_module
    proxy = await make_lane(lk, api_keys=frozenset({KEY}),
                            allowed_origins=[ORIGIN])
    auth = {"Authorization": f"Bearer {KEY}"}
    cases = [
        (post({"room": room()}), 401, "unauthorized"),
        (post({"room": room()}, {"Authorization": "Bearer nope"}), 403, "forbidden"),
        (post({"room": room()}, {**auth, "Origin": "https://evil.example"}), 403,
         "origin_not_allowed"),
        (post(b"{not json", auth), 400, "invalid_json"),
        (post({"room": "voiceops-probe"}, auth), 400, "reserved_room"),
    ]
    for request, status, code in cases:
        reply, = await ask(proxy, request)
        assert (reply.status, reply.body["error"]["code"]) == (status, code), reply.body
    assert (proxy.lane.served, proxy.lane.handed) == (0, len(cases))
    ok, = await ask(proxy, post({"room": room()}, {**auth, "Origin": ORIGIN}))
    assert ok.status == 200 and proxy.lane.served == 1
    assert ok.headers["access-control-allow-origin"] == ORIGIN and ok.headers["vary"] == "Origin"


async def test_each_request_counts_once_against_the_rate_limit(livekit_server_module,
                                                               make_lane):
    """Two requests a minute: a refused body (handed, counted by aiohttp) and one dispatch
    (the lane) use them up; the next is refused 429 with Retry-After."""
    lk = livekit_server_module
    proxy = await make_lane(lk, rate_limit_per_minute=2)
    bad, ok, limited = await ask(proxy, post({"room": ""}), post({"room": room()}),
                                 post({"room": room()}))
    assert (bad.status, ok.status, limited.status) == (400, 200, 429)
    assert limited.body["error"]["code"] == "rate_limited" and "retry-after" in limited.headers


async def test_livekit_failure_from_the_lane(make_lane, event_sink):
    """LiveKit unreachable: the lane answers 503 in the error shape and emits dispatch_failed."""
    nowhere = types.SimpleNamespace(url=f"ws://127.0.0.1:{free_port()}", api_key="devkey",
                                    api_secret="secret")
    proxy = await make_lane(nowhere)
    target = room()
    reply, = await ask(proxy, post({"room": target}))
    assert reply.status == 503 and reply.body["success"] is False
    assert reply.body["error"]["code"] == "livekit_unreachable"
    assert reply.headers["vary"] == "Origin" and proxy.lane.handed == 0
    event = await event_sink.wait_for("dispatch_failed", room=target)
    assert event["reason"] == "livekit_error"


async def test_idle_connection_is_closed_after_the_header_timeout(livekit_server_module,
                                                                  make_lane):
    """A connection that sends nothing (at first, or after an answer) is closed in time."""
    lk = livekit_server_module
    proxy = await make_lane(lk, overrides={"header_timeout_s": 0.3})
    reader, writer = await proxy.connect()
    assert await asyncio.wait_for(reader.read(), 10.0) == b""
    reader, writer = await proxy.connect()
    writer.write(post({"room": room()}))
    assert (await read_reply(reader)).status == 200
    assert await asyncio.wait_for(reader.read(), 10.0) == b""
    writer.close()


async def test_shutdown_lets_a_dispatch_in_flight_finish(livekit_server, make_lane,
                                                         event_sink):
    """Stopping while a dispatch waits on LiveKit: it is still answered and announced (its
    event is out when the shutdown returns, not a batch interval later), then the lane closes."""
    lk = livekit_server
    proxy = await make_lane(lk)
    lk.faults.set(twirp_delay_s=0.5)
    reader, writer = await proxy.connect()
    target = room()
    writer.write(post({"room": target}))
    await wait_for_async(lambda: any(c.busy for c in proxy.lane.connections), WAIT_S,
                         "a dispatch in flight")
    shutdown = asyncio.create_task(proxy.lane.shutdown(10.0))
    reply = await read_reply(reader)
    await shutdown
    assert reply.status == 200 and not proxy.lane.connections
    assert [e["dispatch_id"] for e in event_sink.of_type("dispatch_created")
            if e["room"] == target] == [reply.body["dispatch_id"]]
    writer.close()
