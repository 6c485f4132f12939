"""The contract between the `/rtc` signalling side and the emulator's room core.

Its own module so that the signalling session and the routes can both depend on it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from livekit import api
from livekit.protocol import models

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

    def verify_join_token(self, token: str) -> api.Claims:
        """Verified claims; PermissionError with a reason if invalid, no roomJoin or no room."""
        ...

    def refuse_media(self) -> bool:
        """Fault: when True, the server never answers the client's publisher offer."""
        ...

    async def join(self, claims: api.Claims, sink: ParticipantSink) -> JoinInfo:
        """Get-or-create the room, add the participant as JOINING, return the JoinResponse parts."""
        ...

    async def set_active(self, room: str, identity: str) -> None:
        """The participant's peer connection connected: mark ACTIVE, webhook, updates to others."""
        ...

    async def leave(self, room: str, identity: str) -> None:
        """Remove the participant (webhook, updates to others, empty-room timer)."""
        ...
