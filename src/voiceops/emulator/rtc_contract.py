"""The contract between the `/rtc` signalling side and the emulator's room core.

Its own module so that the signalling session and the routes can both depend on it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from livekit.api.access_token import Claims
from livekit.protocol import models
from livekit.protocol import rtc as proto

from voiceops.emulator.state import ParticipantSink

__all__ = ["JoinInfo", "ParticipantSink", "RtcHub"]


@dataclass(frozen=True)
class JoinInfo:
    """What the room core returns for a join: the protobufs that go into the JoinResponse."""

    room: models.Room
    participant: models.ParticipantInfo
    others: list[models.ParticipantInfo]


class RtcHub(Protocol):
    """What the signalling endpoint needs from the emulator's room core."""

    def verify_join_token(self, token: str) -> Claims:
        """Verified claims; PermissionError with a reason if invalid, no roomJoin or no room."""
        ...

    def refuse_media(self) -> bool:
        """Fault: when True, the server never answers the client's publisher offer."""
        ...

    async def join(
        self, claims: Claims, sink: ParticipantSink, *, auto_subscribe: bool = True
    ) -> JoinInfo:
        """Get-or-create the room, add the participant as JOINING, return the JoinResponse parts.

        With `auto_subscribe` the participant is sent every audio track published in the room."""
        ...

    async def publish_track(
        self, room: str, identity: str, track: models.TrackInfo, media: Any
    ) -> None:
        """The track's media arrived (an aiortc track): list it, announce it, forward it."""
        ...

    async def unpublish_track(self, room: str, identity: str, track_sid: str) -> None:
        """The publisher stopped sending the track: unlist it and stop forwarding it."""
        ...

    async def mute_track(self, room: str, identity: str, track_sid: str, muted: bool) -> None:
        """The publisher (un)muted a track: record it and tell the others."""
        ...

    async def update_subscription(
        self, room: str, identity: str, track_sids: list[str], subscribe: bool
    ) -> None:
        """A manual (un)subscription (clients that joined without auto-subscribe)."""
        ...

    def relay_data(self, room: str, identity: str, kind: int, raw: bytes) -> None:
        """A DataPacket the participant sent on its `_reliable`/`_lossy` channel: relay it.

        Synchronous, so that packets reach the others in the order they were sent."""
        ...

    async def update_metadata(
        self, room: str, identity: str, update: proto.UpdateParticipantMetadata
    ) -> proto.SignalResponse:
        """The participant's own name/metadata/attributes update; returns the RequestResponse."""
        ...

    async def set_active(self, room: str, identity: str) -> None:
        """The participant's peer connection connected: mark ACTIVE, webhook, updates to others."""
        ...

    async def leave(self, room: str, identity: str) -> None:
        """Remove the participant (webhook, updates to others, empty-room timer)."""
        ...
