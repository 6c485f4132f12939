"""Forward a publisher's Opus as received: no decode on our side, no re-encode per subscriber.

An SFU forwards packets; aiortc always decodes what it receives (in a thread per receiver) and
encodes what it sends, unless the track yields `av.Packet`s, which its sender packs as they
are. So before the receiver starts, its decoder queue is replaced by one that turns each Opus
frame into a packet on the track at once, and its jitter buffer by one that releases each packet
on arrival: an Opus RTP packet is a whole frame (aiortc's audio default holds 4 more, ~80 ms,
for its decoder's sake; even without those, its buffer sees a frame complete only when the next
packet arrives: 20 ms per hop, and a talk spurt's last frame held until the next spurt).
That reaches into two private attributes of aiortc's RTCRtpReceiver (checked: aiortc 1.16);
when they are not there, the receiver is left as it is and the emulator decodes and re-encodes.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from fractions import Fraction
from typing import Any

import av
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_gt

log = logging.getLogger(__name__)

OPUS_TIME_BASE = Fraction(1, 48000)  # Opus RTP clock
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


class _PacketQueue:
    """Stands in for the receiver's decoder queue (put on the event loop, get in its thread)."""

    def __init__(self, track_queue: asyncio.Queue[Any]) -> None:
        self._track_queue = track_queue
        self._stop: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._decoders: dict[str, Any] = {}

    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:  # the receiver stops: release its thread, which then ends the track
            self._stop.put(None)
            return
        codec, frame = item
        if codec.name.lower() == "opus":
            packet = av.Packet(frame.data)
            packet.pts, packet.time_base = frame.timestamp, OPUS_TIME_BASE
            self._track_queue.put_nowait(packet)
            return
        # Not Opus (no LiveKit SDK offers that first): decode it, as aiortc would have.
        decoder = self._decoders.setdefault(codec.name, get_decoder(codec))
        for decoded in decoder.decode(frame):
            self._track_queue.put_nowait(decoded)

    def get(self) -> None:
        return self._stop.get()


class EachPacket:
    """Stands in for the receiver's jitter buffer: each packet is a frame, out on arrival.

    A packet not newer than the last one forwarded (a repeat, or one overtaken) is dropped: the
    sender behind us numbers what it forwards in order, and the subscriber's own jitter buffer
    conceals a gap.
    """

    def __init__(self) -> None:
        self._last_seq: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._last_seq is not None and not uint16_gt(packet.sequence_number, self._last_seq):
            return False, None
        self._last_seq = packet.sequence_number
        data: bytes = getattr(packet, "_data", packet.payload)  # set by the receiver: depayloaded
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def forward_encoded(receiver: RTCRtpReceiver, track: Any) -> bool:
    """Make a not yet started audio receiver yield packets; False (unchanged) if it cannot."""
    track_queue = getattr(track, "_queue", None)
    if not (hasattr(receiver, _DECODER_QUEUE) and hasattr(receiver, _JITTER_BUFFER)
            and isinstance(track_queue, asyncio.Queue)):
        log.debug("rtc_passthrough_unavailable fallback=decoded_audio")
        return False
    setattr(receiver, _DECODER_QUEUE, _PacketQueue(track_queue))
    setattr(receiver, _JITTER_BUFFER, EachPacket())
    return True
