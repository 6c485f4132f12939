"""The /rtc endpoint on the wire: HTTP routes, auth, and the signalling messages byte for byte."""

from __future__ import annotations

import asyncio
import base64
import gzip

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from livekit.protocol import models
from livekit.protocol import rtc as proto

try:
    from .rtc_fakehub import FakeHub, mint_token, serve
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_fakehub import FakeHub, mint_token, serve

from voiceops.emulator.rtc import SESSIONS_KEY

pytestmark = pytest.mark.livekit

DEADLINE_S = 15.0


def _http(url: str) -> str:
    return url.replace("ws://", "http://", 1)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> proto.SignalResponse:
    msg = await ws.receive(timeout=DEADLINE_S)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    return proto.SignalResponse.FromString(msg.data)


async def _send(ws: aiohttp.ClientWebSocketResponse, req: proto.SignalRequest) -> None:
    await ws.send_bytes(req.SerializeToString())


async def _client_offer() -> tuple[RTCPeerConnection, str]:
    """An offer shaped like the FFI's publisher offer (data channels only)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("_reliable")
    pc.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _join_request(*, gzip_it: bool = False, auto_subscribe: bool = True) -> str:
    """A `join_request` query value as the SDKs build it (base64url WrappedJoinRequest)."""
    req = proto.JoinRequest(
        connection_settings=proto.ConnectionSettings(auto_subscribe=auto_subscribe)
    )
    raw, compression = req.SerializeToString(), proto.WrappedJoinRequest.NONE
    if gzip_it:
        raw, compression = gzip.compress(raw), proto.WrappedJoinRequest.GZIP
    wrapped = proto.WrappedJoinRequest(compression=compression, join_request=raw)
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()


async def test_plain_get_is_404_and_validate_checks_the_token() -> None:
    """A non-WebSocket GET on /rtc or /rtc/v1 is 404 (Go); validate answers 200, 400 or 401."""
    hub = FakeHub()
    good = mint_token("r", "alice")
    bad = mint_token("r", "alice", secret="a-different-secret-of-sufficient-length")
    v1 = {"join_request": _join_request()}
    async with serve(hub) as (url, _app), aiohttp.ClientSession() as http:
        base = _http(url)
        for path in ("/rtc", "/rtc/v1"):
            async with http.get(base + path, headers=_auth(good), params=v1) as resp:
                assert resp.status == 404, path
        for path, params in (("/rtc/validate", {}), ("/rtc/v1/validate", v1)):
            async with http.get(base + path, headers=_auth(good), params=params) as resp:
                assert resp.status == 200, path
            async with http.get(base + path, params={"access_token": good, **params}) as resp:
                assert resp.status == 200, path
            async with http.get(base + path, headers=_auth(bad), params=params) as resp:
                assert resp.status == 401, path
                assert "secret" not in await resp.text()
            async with http.get(base + path, params=params) as resp:
                assert resp.status == 401, path
        for params, reason in (({}, "join_request is required"),
                               ({"join_request": "%%%"}, "cannot decode wrapped join request")):
            async with http.get(
                f"{base}/rtc/v1/validate", headers=_auth(good), params=params
            ) as resp:
                assert (resp.status, await resp.text()) == (400, reason)


async def test_v1_join_request_plain_or_gzip_joins_single_pc() -> None:
    """/rtc/v1 with a plain or gzip join_request joins; auto_subscribe comes from its settings."""
    joined: list[bool] = []

    class RecordingHub(FakeHub):
        async def join(self, claims, sink, *, auto_subscribe=True):  # type: ignore[override]
            joined.append(auto_subscribe)
            return await super().join(claims, sink, auto_subscribe=auto_subscribe)

    hub = RecordingHub()
    async with serve(hub) as (url, app), aiohttp.ClientSession() as http:
        for gzip_it, auto in ((False, True), (True, False)):
            ws = await http.ws_connect(
                f"{url}/rtc/v1",
                headers=_auth(mint_token("r", f"v1-{gzip_it}")),
                params={"join_request": _join_request(gzip_it=gzip_it, auto_subscribe=auto)},
            )
            assert (await _receive(ws)).WhichOneof("message") == "join"
            assert [s.subscriber for s in app[SESSIONS_KEY]][-1] is None  # single PC
            await ws.close()
    assert joined == [True, False]


async def test_rtc_socket_rejects_bad_tokens_before_upgrade() -> None:
    """/rtc refuses a missing, mis-signed or grant-less token with 401 and never joins."""
    hub = FakeHub()
    bad = mint_token("r", "alice", secret="a-different-secret-of-sufficient-length")
    async with serve(hub) as (url, _app), aiohttp.ClientSession() as http:
        for headers in ({}, _auth(bad), _auth("not-a-jwt")):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(f"{url}/rtc", headers=headers)
            assert info.value.status == 401
    assert hub.events == []


async def test_join_ping_add_track_and_leave() -> None:
    """JoinResponse comes first with the real server's ping settings; pings, add_track and leave
    are served."""
    hub = FakeHub()
    async with serve(hub) as (url, _app), aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/rtc", headers=_auth(mint_token("r", "alice")))
        join = (await _receive(ws)).join
        assert (join.room.name, join.participant.identity) == ("r", "alice")
        assert (join.ping_interval, join.ping_timeout) == (5, 15)
        assert not join.subscriber_primary and not join.fast_publish
        assert join.server_info.version and join.server_version

        await _send(ws, proto.SignalRequest(ping_req=proto.Ping(timestamp=1234, rtt=7)))
        pong = (await _receive(ws)).pong_resp
        assert pong.last_ping_timestamp == 1234 and pong.timestamp > 1234
        await _send(ws, proto.SignalRequest(ping=99))
        assert (await _receive(ws)).pong > 0

        add = proto.AddTrackRequest(cid="cid-1", name="mic", type=models.TrackType.AUDIO,
                                    source=models.TrackSource.MICROPHONE)
        await _send(ws, proto.SignalRequest(add_track=add))
        published = (await _receive(ws)).track_published
        assert published.cid == "cid-1" and published.track.sid.startswith("TR_")
        assert (published.track.name, published.track.source) == (
            "mic",
            models.TrackSource.MICROPHONE,
        )

        await _send(ws, proto.SignalRequest(leave=proto.LeaveRequest()))
        await hub.wait_for(lambda: hub.saw("leave", "r", "alice"), DEADLINE_S)
        assert (await ws.receive(timeout=DEADLINE_S)).type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
        )
        await ws.close()


@pytest.mark.parametrize("refuse", [False, True], ids=["answered", "refused"])
async def test_offer_is_answered_unless_media_is_refused(refuse: bool) -> None:
    """An offer (with candidates trickled before it) gets an answer with the same id, unless
    refuse_media."""
    hub = FakeHub(refuse=refuse)
    client_pc, offer_sdp = await _client_offer()
    try:
        async with serve(hub) as (url, _app), aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{url}/rtc", headers=_auth(mint_token("r", "alice")))
            assert (await _receive(ws)).WhichOneof("message") == "join"
            early = (
                '{"candidate":"candidate:1 1 udp 2122260223 192.0.2.9 50000 typ host",'
                '"sdpMid":"0","sdpMLineIndex":0}'
            )
            await _send(ws, proto.SignalRequest(trickle=proto.TrickleRequest(
                candidateInit=early, target=proto.SignalTarget.PUBLISHER)))
            await _send(
                ws,
                proto.SignalRequest(
                    offer=proto.SessionDescription(type="offer", sdp=offer_sdp, id=3)
                ),
            )
            # Requests are served in order: a ping sent after the offer is answered after it.
            await _send(ws, proto.SignalRequest(ping_req=proto.Ping(timestamp=1)))
            first = await _receive(ws)
            if refuse:
                assert first.WhichOneof("message") == "pong_resp"
            else:
                assert first.WhichOneof("message") == "answer"
                assert (first.answer.type, first.answer.id) == ("answer", 3)
                assert "a=candidate:" in first.answer.sdp
                assert (await _receive(ws)).WhichOneof("message") == "pong_resp"
            await ws.close()
            await hub.wait_for(lambda: hub.saw("leave", "r", "alice"), DEADLINE_S)
    finally:
        await client_pc.close()


async def test_updates_pushed_before_join_response_wait_behind_it() -> None:
    """Whatever the hub pushes into the sink during join is delivered after the JoinResponse."""

    class EagerHub(FakeHub):
        async def join(self, claims, sink, **kwargs):  # type: ignore[override]
            await sink.send(proto.SignalResponse(update=proto.ParticipantUpdate()))
            return await super().join(claims, sink, **kwargs)

    hub = EagerHub()
    async with serve(hub) as (url, _app), aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/rtc", headers=_auth(mint_token("r", "alice")))
        assert (await _receive(ws)).WhichOneof("message") == "join"
        assert (await _receive(ws)).WhichOneof("message") == "update"
        await ws.close()
        await hub.wait_for(lambda: hub.saw("leave", "r", "alice"), DEADLINE_S)


async def test_app_shutdown_closes_live_sessions() -> None:
    """Stopping the app sends leave to connected clients and tells the hub they left."""
    hub = FakeHub()
    async with aiohttp.ClientSession() as http:
        async with serve(hub) as (url, _app):
            ws = await http.ws_connect(f"{url}/rtc", headers=_auth(mint_token("r", "alice")))
            assert (await _receive(ws)).WhichOneof("message") == "join"
            shutdown = asyncio.ensure_future(_read_leave(ws))
        leave = await asyncio.wait_for(shutdown, DEADLINE_S)
        assert leave.reason == models.DisconnectReason.SERVER_SHUTDOWN
        assert not leave.can_reconnect
        assert hub.saw("leave", "r", "alice")


async def _read_leave(ws: aiohttp.ClientWebSocketResponse) -> proto.LeaveRequest:
    while True:
        msg = await _receive(ws)
        if msg.WhichOneof("message") == "leave":
            return msg.leave
