"""A small in-test `RtcHub` for the `/rtc` tests (the real room core lives in the emulator)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as proto

from voiceops.emulator.rtc import JoinInfo, ParticipantSink, setup_rtc_routes
from voiceops.emulator.rtc_media import MediaFanout
from voiceops.testing.waiting import wait_for_async

API_KEY = "rtc-test-key"
API_SECRET = "rtc-test-secret-that-is-long-enough-for-hs256"


def mint_token(
    room: str,
    identity: str,
    *,
    kind: str = "standard",
    key: str = API_KEY,
    secret: str = API_SECRET,
    can_publish_data: bool = True,
    can_update_own_metadata: bool = False,
) -> str:
    """A join token for `room` as `identity`, signed with the test key unless told otherwise."""
    return (
        api.AccessToken(key, secret)
        .with_identity(identity)
        .with_kind(kind)
        .with_grants(api.VideoGrants(
            room_join=True, room=room, can_publish_data=can_publish_data,
            can_update_own_metadata=can_update_own_metadata))
        .with_ttl(timedelta(minutes=10))
        .to_jwt()
    )


@dataclass
class _Member:
    info: models.ParticipantInfo
    sink: ParticipantSink


@dataclass
class FakeHub:
    """Implements `RtcHub`: rooms in memory, ParticipantUpdates to the others, an event log."""

    refuse: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)
    rooms: dict[str, dict[str, _Member]] = field(default_factory=dict)
    _verifier: api.TokenVerifier = field(
        default_factory=lambda: api.TokenVerifier(API_KEY, API_SECRET)
    )
    media: MediaFanout = field(default_factory=MediaFanout)  # drains published media

    def verify_join_token(self, token: str) -> api.Claims:
        try:
            claims = self._verifier.verify(token)
        except Exception as exc:  # the verifier raises jwt errors and ValueError alike
            raise PermissionError(f"token does not verify: {type(exc).__name__}") from None
        if claims.video is None or not claims.video.room_join or not claims.video.room:
            raise PermissionError("token has no roomJoin grant for a room")
        return claims

    def refuse_media(self) -> bool:
        return self.refuse

    def relay_data(self, room: str, identity: str, kind: int, raw: bytes) -> None:
        self.events.append(("data", room, identity))  # the wire tests relay nothing

    async def update_metadata(
        self, room: str, identity: str, update: proto.UpdateParticipantMetadata
    ) -> proto.SignalResponse:
        self.events.append(("update_metadata", room, identity))
        return proto.SignalResponse(request_response=proto.RequestResponse(
            request_id=update.request_id, reason=proto.RequestResponse.NOT_ALLOWED))

    async def join(
        self, claims: api.Claims, sink: ParticipantSink, *, auto_subscribe: bool = True
    ) -> JoinInfo:
        room = claims.video.room
        members = self.rooms.setdefault(room, {})
        old = members.pop(claims.identity, None)
        if old is not None:
            await old.sink.close("DUPLICATE_IDENTITY")
        kind = (
            models.ParticipantInfo.AGENT
            if claims.kind == "agent"
            else models.ParticipantInfo.STANDARD
        )
        info = models.ParticipantInfo(
            sid=f"PA_{claims.identity}", identity=claims.identity, name=claims.name,
            state=models.ParticipantInfo.JOINING, kind=kind, joined_at=int(time.time()),
        )
        others = [m.info for m in members.values()]
        members[claims.identity] = _Member(info, sink)
        self._record("join", room, claims.identity)
        return JoinInfo(
            room=models.Room(sid=f"RM_{room}", name=room), participant=info, others=others
        )

    async def set_active(self, room: str, identity: str) -> None:
        member = self.rooms[room][identity]
        member.info.state = models.ParticipantInfo.ACTIVE
        await self._broadcast(room, member.info)
        self._record("active", room, identity)

    async def leave(self, room: str, identity: str) -> None:
        member = self.rooms.get(room, {}).pop(identity, None)
        if member is not None:
            member.info.state = models.ParticipantInfo.DISCONNECTED
            await self._broadcast(room, member.info)
        self._record("leave", room, identity)

    async def publish_track(self, room: str, identity: str, track: models.TrackInfo, media) -> None:
        self.media.add_source(track.sid, media)
        self._record("publish", room, identity)

    async def unpublish_track(self, room: str, identity: str, track_sid: str) -> None:
        self.media.remove_source(track_sid)
        self._record("unpublish", room, identity)

    async def mute_track(self, room: str, identity: str, track_sid: str, muted: bool) -> None:
        self._record("mute" if muted else "unmute", room, identity)

    async def update_subscription(
        self, room: str, identity: str, track_sids: list[str], subscribe: bool
    ) -> None:
        self._record("subscription", room, identity)

    async def delete_room(self, room: str) -> None:
        """Server-side removal of everyone, as a DeleteRoom would do."""
        for member in self.rooms.pop(room, {}).values():
            await member.sink.close("ROOM_DELETED")
        self._record("deleted", room, "")

    def saw(self, kind: str, room: str, identity: str) -> bool:
        return (kind, room, identity) in self.events

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until `predicate()` holds (the shared deadline poll); fail at the deadline."""
        await wait_for_async(predicate, timeout_s, "a hub event", 0.02)

    async def _broadcast(self, room: str, info: models.ParticipantInfo) -> None:
        update = proto.SignalResponse(update=proto.ParticipantUpdate(participants=[info]))
        for identity, member in self.rooms.get(room, {}).items():
            if identity != info.identity:
                await member.sink.send(update)

    def _record(self, kind: str, room: str, identity: str) -> None:
        self.events.append((kind, room, identity))


@contextlib.asynccontextmanager
async def serve(hub: FakeHub) -> AsyncIterator[tuple[str, web.Application]]:
    """The `/rtc` routes on a free loopback port; yields (ws url, app) and cleans up."""
    app = web.Application()
    setup_rtc_routes(app, hub)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        await runner.cleanup()
        await hub.media.close()
