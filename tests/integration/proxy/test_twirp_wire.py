"""The proxy's lean Twirp client speaks livekit-api's wire format and fails the same way.

Both clients call one capture server (the same request bytes and claims; the same errors for
each kind of error answer), and both call LiveKit (the emulator, or a real server when
LIVEKIT_URL is set). Also: connections are kept alive, and one the server closed while idle,
or one a timeout cut, is never reused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api
from livekit.protocol import agent_dispatch
from proxy_helpers import AGENT_NAME, WAIT_S

from voiceops.proxy.twirp import TwirpClient
from voiceops.signing import SignedTokens
from voiceops.testing.waiting import wait_for_async

KEY, SECRET = "APIwire", "wire-secret-4f1e9a7c2b8d6e0f3a5c"
ADMIN = api.VideoGrants(room_admin=True, room="wire-room")


@dataclass
class Capture:
    """A server that records each request and answers what the test sets."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    status: int = 200
    body: bytes = b""
    content_type: str = "application/protobuf"
    hold: asyncio.Event | None = None  # set: requests wait for it

    async def handle(self, request: web.Request) -> web.Response:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.seen.append({"method": request.method, "path": request.path,
                          "type": request.headers.get("Content-Type"),
                          "auth": request.headers.get("Authorization", ""),
                          "body": await request.read()})
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@pytest.fixture
async def capture() -> AsyncIterator[tuple[Capture, str]]:
    cap = Capture()
    app = web.Application()
    app.router.add_post("/{tail:.*}", cap.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(keepalive_timeout=0.3)
    yield cap, str(server.make_url("")).rstrip("/")
    await server.close()


def claims(auth: str) -> dict[str, Any]:
    token = auth.removeprefix("Bearer ")
    found = jwt.decode(token, SECRET, algorithms=["HS256"])
    return {k: found.get(k) for k in ("iss", "sub", "video")}


async def both(url: str) -> tuple[api.LiveKitAPI, TwirpClient, SignedTokens]:
    return (api.LiveKitAPI(url, KEY, SECRET, failover=False), TwirpClient(url),
            SignedTokens(KEY, SECRET))


async def test_same_request_on_the_wire(capture: tuple[Capture, str]):
    """CreateDispatch and ListRooms: same method, path, type, body bytes and token claims."""
    cap, url = capture
    lk, lean, tokens = await both(url)
    create = api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room="wire-room", metadata="m")
    cap.body = agent_dispatch.AgentDispatch(id="AD_x", room="wire-room").SerializeToString()
    got = await lean.call("AgentDispatchService", "CreateDispatch", create,
                          agent_dispatch.AgentDispatch,
                          tokens.auth_header(ADMIN)["authorization"])
    sdk = await lk.agent_dispatch.create_dispatch(create)
    assert got == sdk and got.id == "AD_x"
    cap.body = api.ListRoomsResponse().SerializeToString()
    await lean.call("RoomService", "ListRooms", api.ListRoomsRequest(names=["a"]),
                    api.ListRoomsResponse,
                    tokens.auth_header(api.VideoGrants(room_list=True))["authorization"])
    await lk.room.list_rooms(api.ListRoomsRequest(names=["a"]))
    ours, theirs = cap.seen[0::2], cap.seen[1::2]
    assert [s["path"] for s in ours] == ["/twirp/livekit.AgentDispatchService/CreateDispatch",
                                         "/twirp/livekit.RoomService/ListRooms"]
    for mine, sdk_req in zip(ours, theirs, strict=True):
        assert {k: mine[k] for k in ("method", "path", "type", "body")} == \
            {k: sdk_req[k] for k in ("method", "path", "type", "body")}
        assert claims(mine["auth"]) == claims(sdk_req["auth"])
    await lk.aclose()
    await lean.aclose()


@pytest.mark.parametrize(("status", "body", "content_type"), [
    (404, {"code": "not_found", "msg": "no such room", "meta": {"room": "x"}}, "application/json"),
    (401, {"code": "unauthenticated", "msg": "bad token"}, "application/json"),
    (503, {"code": "unavailable", "msg": "busy"}, "application/json"),
    (500, "boom", "text/plain"),
    (502, {"code": "internal", "msg": "typed as text"}, "text/plain"),
])
async def test_same_error_for_each_error_answer(capture: tuple[Capture, str], status: int,
                                                body: Any, content_type: str):
    """A Twirp JSON error, a non-JSON error and a JSON body mislabelled: equal TwirpErrors."""
    cap, url = capture
    cap.status, cap.content_type = status, content_type
    cap.body = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    lk, lean, tokens = await both(url)
    req = api.ListRoomsRequest()
    with pytest.raises(api.TwirpError) as sdk:
        await lk.room.list_rooms(req)
    with pytest.raises(api.TwirpError) as mine:
        await lean.call("RoomService", "ListRooms", req, api.ListRoomsResponse,
                        tokens.auth_header(api.VideoGrants(room_list=True))["authorization"])
    fields = ("code", "message", "status", "metadata")
    assert [getattr(mine.value, f) for f in fields] == [getattr(sdk.value, f) for f in fields]
    await lk.aclose()
    await lean.aclose()


async def test_connections_are_kept_alive_and_never_reused_stale(capture: tuple[Capture, str]):
    """Calls share one connection; once the server closes it idle, the next call opens another
    (no error); a call cut by a timeout leaves its connection closed, not pooled."""
    cap, url = capture
    lean, tokens = TwirpClient(url), SignedTokens(KEY, SECRET)
    auth = tokens.auth_header(api.VideoGrants(room_list=True))["authorization"]

    async def call() -> api.ListRoomsResponse:
        return await lean.call("RoomService", "ListRooms", api.ListRoomsRequest(),
                               api.ListRoomsResponse, auth)

    for _ in range(5):
        await call()
    assert lean.connections_made == 1 and len(cap.peers) == 1
    await wait_for_async(lambda: lean.idle_connections == 0, WAIT_S,
                         "the server closing the idle connection")
    await call()
    assert lean.connections_made == 2
    cap.hold = asyncio.Event()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await call()
    cap.hold.set()
    cap.hold = None
    assert lean.idle_connections == 0  # the cut connection was closed, not kept
    await call()
    assert lean.connections_made == 3
    await lean.aclose()


async def test_refused_connection_is_upstream_gone():
    """Nothing listening: the lean client raises UpstreamGone (a ConnectionError)."""
    from voiceops.proxy.twirp_http import UpstreamGone
    from voiceops.testing.procs import free_port

    lean = TwirpClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamGone):
        await lean.call("RoomService", "ListRooms", api.ListRoomsRequest(),
                        api.ListRoomsResponse, "Bearer x")


@pytest.mark.livekit
async def test_against_livekit_both_clients_agree(livekit_server_module):
    """On LiveKit: a dispatch made by the lean client is listed by livekit-api, and a wrong
    secret is refused with the same error by both."""
    lk = livekit_server_module
    room = f"wire-{uuid.uuid4().hex[:10]}"
    lean, tokens = TwirpClient(lk.http_url), SignedTokens(lk.api_key, lk.api_secret)
    admin = tokens.auth_header(api.VideoGrants(room_admin=True, room=room))["authorization"]
    made = await lean.call("AgentDispatchService", "CreateDispatch",
                           api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room),
                           agent_dispatch.AgentDispatch, admin)
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as sdk:
        listed = await sdk.agent_dispatch.list_dispatch(room)
        assert made.id in [d.id for d in listed]
        ours = await lean.call("AgentDispatchService", "ListDispatch",
                               api.ListAgentDispatchRequest(room=room),
                               api.ListAgentDispatchResponse, admin)
        assert [d.id for d in ours.agent_dispatches] == [d.id for d in listed]
    wrong = SignedTokens(lk.api_key, "not-the-secret-7c1d9e3a5b").auth_header(
        api.VideoGrants(room_list=True))["authorization"]
    async with api.LiveKitAPI(lk.http_url, lk.api_key, "not-the-secret-7c1d9e3a5b",
                              failover=False) as bad_sdk:
        with pytest.raises(api.TwirpError) as sdk_err:
            await bad_sdk.room.list_rooms(api.ListRoomsRequest())
    with pytest.raises(api.TwirpError) as lean_err:
        await lean.call("RoomService", "ListRooms", api.ListRoomsRequest(),
                        api.ListRoomsResponse, wrong)
    assert (lean_err.value.status, lean_err.value.code) == (sdk_err.value.status,
                                                              sdk_err.value.code)
    await lean.aclose()
