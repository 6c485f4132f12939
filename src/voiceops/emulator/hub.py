"""The RtcHub the /rtc module talks to: tokens, joins, ACTIVE, tracks, data, metadata, leaves."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from livekit import api
from livekit.api.access_token import Claims
from livekit.protocol import models
from livekit.protocol import rtc as proto

from . import data_relay
from .faults import FaultController
from .rooms import RoomManager, RoomSpec
from .rtc_contract import JoinInfo
from .rtc_media import MediaFanout
from .state import (
    Participant,
    ParticipantSink,
    ParticipantState,
    Room,
    is_dependent,
    kind_from_claim,
)
from .tokens import new_id

logger = logging.getLogger("voiceops.emulator.hub")


def _spec_from_claims(claims: Claims, room_name: str) -> RoomSpec:
    cfg = claims.room_config
    if cfg is None:
        return RoomSpec(name=room_name)
    return RoomSpec(
        name=room_name,
        empty_timeout_s=cfg.empty_timeout,
        departure_timeout_s=cfg.departure_timeout,
        max_participants=cfg.max_participants,
        metadata=cfg.metadata,
        agents=tuple(cfg.agents),
    )


def _permission(video: api.VideoGrants, is_agent: bool) -> models.ParticipantPermission:
    return models.ParticipantPermission(
        can_subscribe=video.can_subscribe,
        can_publish=video.can_publish,
        can_publish_data=video.can_publish_data,
        hidden=bool(video.hidden),
        can_update_metadata=bool(video.can_update_own_metadata),
        agent=is_agent,
    )


class Hub:
    def __init__(
        self,
        rooms: RoomManager,
        verifier: api.TokenVerifier,
        faults: FaultController,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rooms = rooms
        self._verifier = verifier
        self._faults = faults
        self._clock = clock
        self.media = MediaFanout()
        self._pending_sends: set[asyncio.Task[None]] = set()
        rooms.on_participant_removed = self._drop_media

    def verify_join_token(self, token: str) -> Claims:
        try:
            claims = self._verifier.verify(token)
        except Exception as exc:
            raise PermissionError(f"token does not verify ({type(exc).__name__})") from None
        if claims.video is None or not claims.video.room_join:
            raise PermissionError("token has no roomJoin grant")
        if not claims.video.room:
            raise PermissionError("token names no room")
        if not claims.identity:
            raise PermissionError("token has no identity")
        return claims

    def refuse_media(self) -> bool:
        return self._faults.current.refuse_media

    async def join(
        self, claims: Claims, sink: ParticipantSink, *, auto_subscribe: bool = True
    ) -> JoinInfo:
        assert claims.video is not None
        # roomConfig (e.g. agents to dispatch) applies only when this join creates the room.
        room, _ = self._rooms.get_or_create(_spec_from_claims(claims, claims.video.room))
        kind = kind_from_claim(claims.kind)
        dependent = is_dependent(kind, bool(claims.video.agent), bool(claims.video.recorder))
        if not dependent and room.is_full():
            raise PermissionError("room is full")
        if claims.identity in room.participants:
            logger.info("participant_replaced reason=duplicate_identity")
            await self._rooms.remove_participant(room, claims.identity, "DUPLICATE_IDENTITY")
        participant = Participant(
            sid=new_id("PA_"),
            identity=claims.identity,
            name=claims.name,
            kind=kind,
            metadata=claims.metadata,
            attributes=dict(claims.attributes or {}),
            joined_at_s=self._clock(),
            sink=sink,
            permission=_permission(claims.video, kind == models.ParticipantInfo.Kind.AGENT),
            dependent=dependent,
            auto_subscribe=auto_subscribe,
        )
        others = [p.to_proto() for p in room.participants.values()]
        room.participants[participant.identity] = participant
        if room.first_joined_at_s is None and not dependent:
            room.first_joined_at_s = participant.joined_at_s
        logger.info("participant_joining participant=%s kind=%s", participant.sid, kind)
        if auto_subscribe:  # Go subscribes a joiner to what is already published
            for other in list(room.participants.values()):
                for track in list(other.tracks.values()):
                    self._forward(other, track, participant)
        return JoinInfo(room=room.to_proto(), participant=participant.to_proto(), others=others)

    async def set_active(self, room: str, identity: str) -> None:
        found = self._find(room, identity)
        if found is None:
            return
        rm, participant = found
        if not participant.transition(ParticipantState.ACTIVE):
            return
        info = participant.to_proto()
        self._rooms.webhooks.emit("participant_joined", rm.to_proto(), info)
        await self._broadcast(rm, info, exclude=identity)
        logger.info("participant_active participant=%s", info.sid)

    async def leave(self, room: str, identity: str) -> None:
        found = self._find(room, identity)
        if found is None:
            return
        rm, participant = found
        await self._rooms.remove_participant(rm, identity, "")
        await self._broadcast(rm, participant.to_proto(), exclude=identity)

    # -- tracks ------------------------------------------------------------------------------

    async def publish_track(
        self, room: str, identity: str, track: models.TrackInfo, media: Any
    ) -> None:
        found = self._find(room, identity)
        if found is None:
            return
        rm, participant = found
        participant.tracks[track.sid] = track
        self.media.add_source(track.sid, media)  # read even when unsubscribed: no pile-up
        info = participant.to_proto()
        self._rooms.webhooks.emit("track_published", rm.to_proto(), info, track)
        await self._broadcast(rm, info, exclude=identity)  # before the media: SDKs need it first
        for other in list(rm.participants.values()):
            if other.auto_subscribe:
                self._forward(participant, track, other)
        logger.info("track_published track=%s", track.sid)
        if track.type != models.TrackType.AUDIO:
            logger.warning("track_not_forwarded track=%s reason=not_audio", track.sid)

    async def unpublish_track(self, room: str, identity: str, track_sid: str) -> None:
        found = self._find(room, identity)
        if found is None:
            return
        rm, participant = found
        if self._remove_track(rm, participant, track_sid):
            await self._broadcast(rm, participant.to_proto(), exclude=identity)

    async def mute_track(self, room: str, identity: str, track_sid: str, muted: bool) -> None:
        found = self._find(room, identity)
        if found is None or track_sid not in found[1].tracks:
            return
        rm, participant = found
        participant.tracks[track_sid].muted = muted
        await self._broadcast(rm, participant.to_proto(), exclude=identity)

    async def update_subscription(
        self, room: str, identity: str, track_sids: list[str], subscribe: bool
    ) -> None:
        found = self._find(room, identity)
        if found is None:
            return
        rm, subscriber = found
        for sid in track_sids:
            if not subscribe:
                self._unforward(subscriber, sid)
                continue
            publisher = next((p for p in rm.participants.values() if sid in p.tracks), None)
            if publisher is not None:
                self._forward(publisher, publisher.tracks[sid], subscriber)

    def _forward(
        self, publisher: Participant, track: models.TrackInfo, subscriber: Participant
    ) -> None:
        """Send a copy of `track` to `subscriber` (audio only: video is not forwarded)."""
        if (
            subscriber is publisher
            or subscriber.sink is None
            or track.type != models.TrackType.AUDIO
            or track.sid in subscriber.subscriptions
            or not subscriber.permission.can_subscribe
        ):
            return
        copy = self.media.subscribe(track.sid)
        if copy is None:
            return
        subscriber.subscriptions[track.sid] = copy
        subscriber.sink.subscribe(publisher.sid, track, copy)
        if track.sid not in publisher.ever_subscribed and publisher.sink is not None:
            # Go's sendTrackHasBeenSubscribed (OnTrackEverSubscribed: once per track): the SDKs'
            # wait_for_subscription resolves on it, and livekit-agents' audio output waits on that.
            publisher.ever_subscribed.add(track.sid)
            self._send_soon(publisher, proto.SignalResponse(
                track_subscribed=proto.TrackSubscribed(track_sid=track.sid)))

    def _unforward(self, subscriber: Participant, track_sid: str) -> None:
        copy = subscriber.subscriptions.pop(track_sid, None)
        if copy is None:
            return
        self.media.unsubscribe(track_sid, copy)
        if subscriber.sink is not None:
            subscriber.sink.unsubscribe(track_sid)

    def _remove_track(self, room: Room, publisher: Participant, track_sid: str) -> bool:
        track = publisher.tracks.pop(track_sid, None)
        if track is None:
            return False
        for other in room.participants.values():
            self._unforward(other, track_sid)
        self.media.remove_source(track_sid)
        self._rooms.webhooks.emit(
            "track_unpublished", room.to_proto(), publisher.to_proto(), track
        )
        logger.info("track_unpublished track=%s", track_sid)
        return True

    def _drop_media(self, room: Room, participant: Participant) -> None:
        """A leaving participant: its tracks are unpublished (webhooks), its copies end."""
        for sid in list(participant.tracks):
            self._remove_track(room, participant, sid)
        for sid, copy in list(participant.subscriptions.items()):
            self.media.unsubscribe(sid, copy)
        participant.subscriptions.clear()

    # -- data and metadata ---------------------------------------------------------------------

    def relay_data(self, room: str, identity: str, kind: int, raw: bytes) -> None:
        """Go's handleReceivedDataMessage + BroadcastDataPacketForRoom (see data_relay)."""
        found = self._find(room, identity)
        if found is None:
            return
        rm, sender = found
        if not sender.permission.can_publish_data:
            logger.debug("data_dropped participant=%s reason=no_can_publish_data", sender.sid)
            return
        dp = data_relay.decode(raw)
        if dp is None:
            logger.warning("data_undecodable participant=%s", sender.sid)
            return
        if not data_relay.sequence_advances(kind, dp.sequence, sender.last_reliable_seq):
            return
        if kind == models.DataPacket.RELIABLE and dp.sequence:
            sender.last_reliable_seq = dp.sequence
        view = data_relay.Sender(sender.sid, identity, sender.is_agent, sender.permission.hidden)
        dp = data_relay.prepare(dp, kind, view)
        if dp is None:
            return
        others = {p.sid: p for p in rm.participants.values() if p.sink is not None}
        chosen = data_relay.recipients(
            dp, sender.sid, [data_relay.Recipient(p.sid, p.identity) for p in others.values()])
        out = dp.SerializeToString()
        for recipient in chosen:
            other = others[recipient.sid]
            if kind == models.DataPacket.LOSSY and other.state != ParticipantState.ACTIVE:
                continue  # Go: lossy data only to ACTIVE participants
            if other.sink is not None:  # always: `others` holds only those with a sink
                other.sink.send_data(kind, out)

    async def update_metadata(
        self, room: str, identity: str, update: proto.UpdateParticipantMetadata
    ) -> proto.SignalResponse:
        """Go's UpdateMetadata: needs canUpdateOwnMetadata; an empty attribute value deletes."""
        response = proto.RequestResponse(request_id=update.request_id, update_metadata=update)
        found = self._find(room, identity)
        if found is None:
            return proto.SignalResponse(request_response=response)
        rm, participant = found
        if not participant.permission.can_update_metadata:
            response.reason = proto.RequestResponse.NOT_ALLOWED
            response.message = "does not have permission to update own metadata"
            return proto.SignalResponse(request_response=response)
        if apply_metadata_update(participant, update):
            participant.version += 1
            await self._broadcast(rm, participant.to_proto(), exclude="")
        return proto.SignalResponse(request_response=response)

    def _send_soon(self, participant: Participant, msg: proto.SignalResponse) -> None:
        """Queue a message without awaiting (the sinks' send only enqueues)."""
        assert participant.sink is not None
        task = asyncio.get_running_loop().create_task(participant.sink.send(msg))
        self._pending_sends.add(task)
        task.add_done_callback(self._pending_sends.discard)

    def _find(self, room: str, identity: str) -> tuple[Room, Participant] | None:
        rm = self._rooms.rooms.get(room)
        participant = rm.participants.get(identity) if rm is not None else None
        return None if rm is None or participant is None else (rm, participant)

    async def _broadcast(self, room: Room, info: models.ParticipantInfo, exclude: str) -> None:
        update = proto.SignalResponse(update=proto.ParticipantUpdate(participants=[info]))
        for other in list(room.participants.values()):
            if other.identity == exclude or other.sink is None:
                continue
            try:
                await other.sink.send(update)
            except Exception:  # one broken socket must not starve the others
                logger.exception("participant_update_failed participant=%s", other.sid)


def apply_metadata_update(
    participant: Participant, update: proto.UpdateParticipantMetadata
) -> bool:
    """Apply name, metadata (each only when non-empty) and attributes; True when anything
    changed."""
    before = (participant.name, participant.metadata, dict(participant.attributes))
    if update.name:
        participant.name = update.name
    if update.metadata:
        participant.metadata = update.metadata
    for key, value in update.attributes.items():
        if value:
            participant.attributes[key] = value
        else:
            participant.attributes.pop(key, None)
    return before != (participant.name, participant.metadata, participant.attributes)
