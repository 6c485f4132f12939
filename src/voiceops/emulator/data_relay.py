"""The Go server's rules for relaying a participant's data packets, as pure functions.

Read from livekit/livekit `pkg/rtc/participant.go` (handleReceivedDataMessage) and `room.go`
(BroadcastDataPacketForRoom): the server stamps the sender's identity and sid (blank for a
hidden sender; an agent may keep the identity of the participant it transcribes for in a chat
message or text stream header, which is then marked `generated`), trusts the channel the packet
came on for its kind, drops a reliable packet whose sequence number does not advance, does not
relay transcriptions from non-agents, keeps metrics to itself, and sends the packet to every
other participant, or only to the ones named by identity or sid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from google.protobuf.message import DecodeError
from livekit.protocol import models

RELIABLE_LABEL = "_reliable"
LOSSY_LABEL = "_lossy"
KIND_BY_LABEL = {RELIABLE_LABEL: models.DataPacket.RELIABLE, LOSSY_LABEL: models.DataPacket.LOSSY}


@dataclass(frozen=True)
class Sender:
    """What the rules need to know about the participant a packet came from."""

    sid: str
    identity: str
    is_agent: bool = False
    hidden: bool = False


@dataclass(frozen=True)
class Recipient:
    sid: str
    identity: str


def decode(raw: bytes) -> models.DataPacket | None:
    """The DataPacket in `raw`; None when it does not parse (Go logs and drops it)."""
    try:
        return models.DataPacket.FromString(raw)
    except DecodeError:
        return None


def prepare(dp: models.DataPacket, kind: int, sender: Sender) -> models.DataPacket | None:
    """Stamp `dp` as the server does; None when it is not relayed to other participants."""
    value = dp.WhichOneof("value")  # None for a kind newer than our protobufs: relayed as is
    # the channel it came on is the source of truth (an int; the stubs type it as Kind)
    dp.kind = cast("models.DataPacket.Kind", kind)
    dp.participant_sid = sender.sid
    override_identity = True
    if value == "user":
        user = dp.user
        user.participant_sid = "" if sender.hidden else sender.sid
        user.participant_identity = "" if sender.hidden else sender.identity
        if dp.destination_identities:
            user.destination_identities[:] = dp.destination_identities
        else:
            dp.destination_identities[:] = user.destination_identities
    elif value == "transcription" and not sender.is_agent:
        return None
    elif value == "metrics":
        return None  # Go merges metrics into its own reporter; it does not relay the packet
    elif value in ("chat_message", "stream_header") and _speaks_for_another(dp, sender):
        override_identity = False
        if value == "chat_message":
            dp.chat_message.generated = True
        elif dp.stream_header.WhichOneof("content_header") == "text_header":
            dp.stream_header.text_header.generated = True
        else:
            override_identity = True
    if override_identity:
        dp.participant_identity = "" if sender.hidden else sender.identity
    if value == "user" and dp.participant_identity:
        dp.user.participant_identity = dp.participant_identity
    return dp


def _speaks_for_another(dp: models.DataPacket, sender: Sender) -> bool:
    return sender.is_agent and dp.participant_identity not in ("", sender.identity)


def recipients(
    dp: models.DataPacket, sender_sid: str, others: list[Recipient]
) -> list[Recipient]:
    """Everyone but the sender, or only those named in destination identities / user sids."""
    dest_sids = list(dp.user.destination_sids) if dp.WhichOneof("value") == "user" else []
    dest_identities = list(dp.destination_identities)
    chosen = []
    for other in others:
        if other.sid == sender_sid:
            continue
        if (dest_sids or dest_identities) and not (
            other.sid in dest_sids or other.identity in dest_identities
        ):
            continue
        chosen.append(other)
    return chosen


def sequence_advances(kind: int, sequence: int, last_sequence: int) -> bool:
    """Go drops a reliable packet whose sequence (when set) is not above the last one seen."""
    return kind != models.DataPacket.RELIABLE or sequence == 0 or sequence > last_sequence
