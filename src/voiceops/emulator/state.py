"""The emulator's data model: rooms, participants and dispatches, and the room-closing policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict
from livekit.protocol import agent_dispatch, models, rtc

ParticipantKind = models.ParticipantInfo.Kind
_KINDS: dict[str, models.ParticipantInfo.Kind] = {
    "": ParticipantKind.STANDARD,
    "standard": ParticipantKind.STANDARD,
    "ingress": ParticipantKind.INGRESS,
    "egress": ParticipantKind.EGRESS,
    "sip": ParticipantKind.SIP,
    "agent": ParticipantKind.AGENT,
    "connector": ParticipantKind.CONNECTOR,
    "bridge": ParticipantKind.BRIDGE,
}


def kind_from_claim(kind: str) -> models.ParticipantInfo.Kind:
    """ParticipantInfo.Kind for a token's "kind" claim (unknown kinds count as STANDARD)."""
    return _KINDS.get(kind.lower(), ParticipantKind.STANDARD)


DEPENDENT_KINDS = frozenset({ParticipantKind.AGENT, ParticipantKind.EGRESS})


def is_dependent(kind: int, agent_grant: bool = False, recorder_grant: bool = False) -> bool:
    """Go's ParticipantImpl.IsDependent: agents and recorders, by kind or by grant.

    Dependent participants do not count towards max_participants, do not mark the room as
    joined, and never keep it open on their own."""
    return kind in DEPENDENT_KINDS or agent_grant or recorder_grant


class ParticipantState(enum.Enum):
    JOINING = models.ParticipantInfo.State.JOINING
    JOINED = models.ParticipantInfo.State.JOINED
    ACTIVE = models.ParticipantInfo.State.ACTIVE
    DISCONNECTED = models.ParticipantInfo.State.DISCONNECTED


# The one transition table for participants; anything else is a bug in a caller.
PARTICIPANT_TRANSITIONS: dict[ParticipantState, frozenset[ParticipantState]] = {
    ParticipantState.JOINING: frozenset(
        {ParticipantState.JOINED, ParticipantState.ACTIVE, ParticipantState.DISCONNECTED}
    ),
    ParticipantState.JOINED: frozenset({ParticipantState.ACTIVE, ParticipantState.DISCONNECTED}),
    ParticipantState.ACTIVE: frozenset({ParticipantState.DISCONNECTED}),
    ParticipantState.DISCONNECTED: frozenset(),
}


class ParticipantSink(Protocol):
    """Where the /rtc module receives server-side pushes for one participant."""

    async def send(self, msg: rtc.SignalResponse) -> None: ...

    async def close(self, reason: str) -> None: ...

    def subscribe(self, publisher_sid: str, track: models.TrackInfo, media: Any) -> None:
        """Start sending `media` (a forwarded copy of the publisher's track) to this participant."""
        ...

    def unsubscribe(self, track_sid: str) -> None: ...

    def send_data(self, kind: int, raw: bytes) -> None:
        """Send a relayed DataPacket (serialised) on this participant's data channel of `kind`."""
        ...


@dataclass
class Participant:
    sid: str
    identity: str
    name: str
    kind: models.ParticipantInfo.Kind
    metadata: str
    attributes: dict[str, str]
    joined_at_s: float
    sink: ParticipantSink | None
    permission: models.ParticipantPermission
    state: ParticipantState = ParticipantState.JOINING
    dependent: bool = False  # is_dependent(): an agent or recorder
    auto_subscribe: bool = True
    # Published tracks by sid, in publication order (Go: UpTrackManager).
    tracks: dict[str, models.TrackInfo] = field(default_factory=dict)
    # Tracks this participant is sent: track sid -> its forwarded copy (rtc_media.ForwardedTrack).
    subscriptions: dict[str, Any] = field(default_factory=dict)
    # Published tracks that have had a subscriber (Go's OnTrackEverSubscribed fires once).
    ever_subscribed: set[str] = field(default_factory=set)
    version: int = 0  # ParticipantInfo.version, bumped on each metadata change
    last_reliable_seq: int = 0  # the sender's last reliable data sequence (Go drops repeats)

    def transition(self, new: ParticipantState) -> bool:
        """Move to `new`; False (and no change) when the table does not allow it."""
        if new not in PARTICIPANT_TRANSITIONS[self.state]:
            return False
        self.state = new
        return True

    @property
    def is_agent(self) -> bool:
        return self.kind == ParticipantKind.AGENT

    def to_proto(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.sid,
            identity=self.identity,
            name=self.name,
            state=self.state.value,
            metadata=self.metadata,
            joined_at=int(self.joined_at_s),
            joined_at_ms=int(self.joined_at_s * 1000),
            kind=self.kind,
            attributes=self.attributes,
            permission=self.permission,
            tracks=list(self.tracks.values()),
            is_publisher=bool(self.tracks),
            version=self.version,
        )


@dataclass
class Room:
    sid: str
    name: str
    created_at_s: float
    empty_timeout_s: int
    departure_timeout_s: int
    max_participants: int = 0
    metadata: str = ""
    participants: dict[str, Participant] = field(default_factory=dict)
    dispatches: dict[str, agent_dispatch.AgentDispatch] = field(default_factory=dict)
    first_joined_at_s: float | None = None
    last_left_at_s: float | None = None
    closed: bool = False

    def to_proto(self) -> models.Room:
        return models.Room(
            sid=self.sid,
            name=self.name,
            empty_timeout=self.empty_timeout_s,
            departure_timeout=self.departure_timeout_s,
            max_participants=self.max_participants,
            creation_time=int(self.created_at_s),
            creation_time_ms=int(self.created_at_s * 1000),
            metadata=self.metadata,
            num_participants=len(self.participants),
            enabled_codecs=[models.Codec(mime="audio/opus"), models.Codec(mime="video/VP8")],
        )

    def keeps_room_alive(self) -> list[Participant]:
        # Go: agents (and egress) are "dependent" participants; they never keep a room open alone.
        return [p for p in self.participants.values() if not (p.dependent or p.is_agent)]

    def is_full(self) -> bool:
        """Go's Room.Join: max_participants counts only non-dependent participants."""
        return bool(self.max_participants) and len(self.keeps_room_alive()) >= self.max_participants


def room_should_close(room: Room, now_s: float) -> bool:
    """Go's CloseIfEmpty: departure_timeout after someone joined and left, else empty_timeout."""
    if room.closed or room.keeps_room_alive():
        return False
    if room.first_joined_at_s is not None and room.last_left_at_s is not None:
        return now_s - room.last_left_at_s >= room.departure_timeout_s
    return now_s - room.created_at_s >= room.empty_timeout_s


def dispatch_to_json(dispatch: agent_dispatch.AgentDispatch) -> dict[str, Any]:
    return MessageToDict(dispatch, preserving_proto_field_name=True)
