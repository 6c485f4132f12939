"""The signalling endpoints `/rtc/v1` and `/rtc`, their validate routes, and the hub contract.

As in the Go server (`pkg/service/rtcservice.go`): `/rtc/v1?join_request=…` is single-PC mode
(current SDKs try it first: the Rust FFI behind `livekit.rtc.Room`, livekit-client 2.x), `/rtc`
is the v0 two-PC mode they fall back to on a 404; a non-WebSocket GET on either answers 404;
`/rtc/v1/validate` needs the join_request too. The socket itself is served by
`rtc_session.SignalSession`; media by `rtc_peer.PeerEndpoint` and `rtc_tracks.SessionTracks`.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from livekit.api.access_token import Claims

from voiceops.emulator import rtc_bitrate
from voiceops.emulator.rtc_contract import JoinInfo, ParticipantSink, RtcHub
from voiceops.emulator.rtc_join import JoinRequestError, JoinSettings, v0_settings, v1_settings
from voiceops.emulator.rtc_messages import RtcOptions
from voiceops.emulator.rtc_session import SignalSession

__all__ = [
    "JoinInfo",
    "ParticipantSink",
    "RtcHub",
    "RtcOptions",
    "bearer_token",
    "setup_rtc_routes",
]

log = logging.getLogger(__name__)


HUB_KEY: web.AppKey[RtcHub] = web.AppKey("voiceops_rtc_hub", RtcHub)
OPTIONS_KEY: web.AppKey[RtcOptions] = web.AppKey("voiceops_rtc_options", RtcOptions)
SESSIONS_KEY: web.AppKey[set[SignalSession]] = web.AppKey("voiceops_rtc_sessions", set)


def setup_rtc_routes(
    app: web.Application, hub: RtcHub, options: RtcOptions | None = None
) -> None:
    """Add /rtc, /rtc/v1, /rtc/validate and /rtc/v1/validate to `app`, served from `hub`."""
    rtc_bitrate.install()
    app[HUB_KEY] = hub
    app[OPTIONS_KEY] = options or RtcOptions()
    app[SESSIONS_KEY] = set()
    app.router.add_get("/rtc/v1", _handle_v1)
    app.router.add_get("/rtc/validate", _handle_validate)
    app.router.add_get("/rtc/v1/validate", _handle_v1_validate)
    app.router.add_get("/rtc", _handle_v0)
    app.on_shutdown.append(_close_all_sessions)


def bearer_token(request: web.Request) -> str | None:
    """The access token from `Authorization: Bearer …`, else from `?access_token=`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("access_token") or None


def _verify(request: web.Request) -> Claims:
    """Claims of the request's token; raises 401 (plain text, like the real server) otherwise."""
    token = bearer_token(request)
    if token is None:
        raise web.HTTPUnauthorized(text="no authorization token")
    try:
        return request.app[HUB_KEY].verify_join_token(token)
    except PermissionError as exc:
        raise web.HTTPUnauthorized(text=f"invalid token: {exc}") from None


def _v1_settings(request: web.Request) -> JoinSettings:
    try:
        return v1_settings(request.query)
    except JoinRequestError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def _handle_validate(request: web.Request) -> web.Response:
    _verify(request)
    return web.Response(text="success")


async def _handle_v1_validate(request: web.Request) -> web.Response:
    _verify(request)
    _v1_settings(request)
    return web.Response(text="success")


async def _handle_v0(request: web.Request) -> web.StreamResponse:
    return await _serve(request, v1=False)


async def _handle_v1(request: web.Request) -> web.StreamResponse:
    return await _serve(request, v1=True)


async def _serve(request: web.Request, *, v1: bool) -> web.StreamResponse:
    ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
    if not ws.can_prepare(request).ok:
        raise web.HTTPNotFound(text="expects a WebSocket upgrade")  # Go: 404 before anything else
    claims = _verify(request)
    settings = _v1_settings(request) if v1 else v0_settings(request.query)
    await ws.prepare(request)
    session = SignalSession(
        ws, request.app[HUB_KEY], claims, request.app[OPTIONS_KEY], settings
    )
    sessions = request.app[SESSIONS_KEY]
    sessions.add(session)
    try:
        await session.run()
    finally:
        sessions.discard(session)
    return ws


async def _close_all_sessions(app: web.Application) -> None:
    """On app shutdown, end every live socket (leave + close) so no peer connection outlives it."""
    sessions: set[SignalSession] = app[SESSIONS_KEY]
    await asyncio.gather(*(s.shutdown("SERVER_SHUTDOWN") for s in list(sessions)))
