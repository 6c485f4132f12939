"""One participant's tracks on its `/rtc` session: what it publishes and what it is sent.

Publishing, as the Go server does it: `add_track` is answered at once with `track_published`
(the track is pending); the track is published to the room when its media arrives on the
publisher PC (matched by the client's track id, the `cid`, else by kind); a later offer that no
longer sends on its m-line unpublishes it. Subscribing: v0 adds a send-only m-line to the
subscriber PC and offers; v1 (single PC) sends on an m-line the client offered for receiving,
asking the client for another one with `MediaSectionsRequirement` when none is free, and tells
the client which track each m-line carries (`mid_to_track_id` in the answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.mediastreams import MediaStreamTrack
from livekit.protocol import models
from livekit.protocol import rtc as proto

from voiceops.emulator import rtc_messages as msgs
from voiceops.emulator.rtc_contract import RtcHub
from voiceops.emulator.rtc_media import ForwardedTrack
from voiceops.emulator.rtc_peer import PeerEndpoint
from voiceops.emulator.rtc_sdp import client_send_mids

log = logging.getLogger(__name__)

Send = Callable[[proto.SignalResponse], None]
_KIND = {models.TrackType.AUDIO: "audio", models.TrackType.VIDEO: "video"}


@dataclass
class _Published:
    info: models.TrackInfo
    mid: str


class SessionTracks:
    """Tracks published and subscribed by one participant, and the negotiations they need."""

    def __init__(
        self, hub: RtcHub, room: str, identity: str, send: Send,
        publisher: PeerEndpoint, subscriber: PeerEndpoint | None,
    ) -> None:
        self._hub = hub
        self._room = room
        self._identity = identity
        self._send = send
        self.publisher = publisher
        self.subscriber = subscriber  # None in single-PC mode
        self._pending: dict[str, models.TrackInfo] = {}  # cid -> info, until media arrives
        self._published: dict[str, _Published] = {}  # track sid -> published track
        self._arrived: list[tuple[MediaStreamTrack, str]] = []
        self._subscribed: dict[str, ForwardedTrack] = {}
        self._offer_id = 0
        self._offer_dirty = False
        self._offering: asyncio.Task[None] | None = None

    @property
    def single_pc(self) -> bool:
        return self.subscriber is None

    # -- publishing ------------------------------------------------------------------------

    def add_track(self, req: proto.AddTrackRequest) -> models.TrackInfo:
        """A pending track for the client's AddTrackRequest (the same one if it asks again)."""
        info = self._pending.get(req.cid) or msgs.track_info(req, msgs.new_sid("TR_"))
        self._pending[req.cid] = info
        return info

    def on_media(self, track: MediaStreamTrack, mid: str) -> None:
        """aiortc's track event (inside setRemoteDescription); handled after the answer."""
        self._arrived.append((track, mid))

    async def after_offer(self, offer_sdp: str) -> None:
        """Publish the tracks whose media arrived with this offer; unpublish the ones it dropped."""
        arrived, self._arrived = self._arrived, []
        for track, mid in arrived:
            info = self._match_pending(track)
            if info is None:
                log.warning("rtc_media_unmatched peer=%s kind=%s", self.publisher.name, track.kind)
                continue
            self._published[info.sid] = _Published(info, mid)
            await self._hub.publish_track(self._room, self._identity, info, track)
        sending = client_send_mids(offer_sdp)
        for sid, pub in list(self._published.items()):
            if pub.mid and pub.mid not in sending:
                await self.unpublish(sid)

    def _match_pending(self, track: MediaStreamTrack) -> models.TrackInfo | None:
        cid = track.id if track.id in self._pending else next(
            (c for c, i in self._pending.items() if _KIND.get(i.type) == track.kind), None)
        return None if cid is None else self._pending.pop(cid)

    async def unpublish(self, track_sid: str) -> None:
        if self._published.pop(track_sid, None) is not None:
            await self._hub.unpublish_track(self._room, self._identity, track_sid)

    async def mute(self, req: proto.MuteTrackRequest) -> None:
        if req.sid in self._published:
            await self._hub.mute_track(self._room, self._identity, req.sid, req.muted)

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(self, publisher_sid: str, info: models.TrackInfo, track: ForwardedTrack) -> None:
        """Start sending a forwarded track to this participant."""
        if info.sid in self._subscribed:
            track.end()
            return
        self._subscribed[info.sid] = track
        stream_id = f"{publisher_sid}|{info.sid}"
        if self.subscriber is None:
            free = self.publisher.attach(track, stream_id)
            kind_count = 0 if free else 1
            self._send(proto.SignalResponse(media_sections_requirement=proto.MediaSectionsRequirement(
                num_audios=kind_count if track.kind == "audio" else 0,
                num_videos=kind_count if track.kind == "video" else 0,
            )))
        else:
            self.subscriber.add_send(track, stream_id)
            self._negotiate_subscriber()

    def unsubscribe(self, track_sid: str) -> None:
        track = self._subscribed.pop(track_sid, None)
        if track is None:
            return
        endpoint = self.subscriber or self.publisher
        endpoint.detach(track_sid)
        track.end()
        if self.subscriber is not None:
            self._negotiate_subscriber()
        # Single PC: the m-line stays negotiated and silent until the client's next offer.

    def answer_message(self, sdp: str, offer_id: int) -> proto.SignalResponse:
        """Our answer to the client's offer, with the mid → track sid map single-PC clients use."""
        return proto.SignalResponse(answer=proto.SessionDescription(
            type="answer", sdp=sdp, id=offer_id, mid_to_track_id=self.publisher.mid_to_track_id()))

    def _negotiate_subscriber(self) -> None:
        if self._offering is not None and not self._offering.done():
            self._offer_dirty = True
            return
        if self.subscriber is not None and self.subscriber.awaiting_answer:
            self._offer_dirty = True  # offered again once the client answers
            return
        self._offer_dirty = False
        self._offering = asyncio.get_running_loop().create_task(
            self._offer(), name=f"rtc-offer-{self._identity}")

    async def _offer(self) -> None:
        assert self.subscriber is not None
        sdp = await self.subscriber.offer()
        self._offer_id += 1
        self._send(proto.SignalResponse(offer=proto.SessionDescription(
            type="offer", sdp=sdp, id=self._offer_id,
            mid_to_track_id=self.subscriber.mid_to_track_id())))

    async def on_subscriber_answer(self, answer: proto.SessionDescription) -> None:
        if self.subscriber is None or not self.subscriber.awaiting_answer:
            log.debug("rtc_answer_unexpected peer=%s", self.publisher.name)
            return
        await self.subscriber.apply_answer(answer.sdp)
        if self._offer_dirty:
            self._negotiate_subscriber()

    # -- end -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop offering and end the copies we were sent (the hub removes our publications)."""
        if self._offering is not None:
            self._offering.cancel()
            await asyncio.gather(self._offering, return_exceptions=True)
        for track in self._subscribed.values():
            track.end()
        self._subscribed.clear()
