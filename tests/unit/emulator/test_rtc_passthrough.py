"""The emulator's Opus forwarding releases each RTP packet as it arrives."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from voiceops.emulator.rtc_passthrough import EachPacket


def _packet(seq: int, timestamp: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=timestamp,
                       payload=b"opus-%d" % seq)
    packet._data = packet.payload  # type: ignore[attr-defined]  # the receiver depayloads first
    return packet


def test_each_opus_packet_is_forwarded_on_arrival() -> None:
    """A packet's frame comes out at once (not when the next packet shows it complete): the
    first of a talk spurt and the last one too; sequence numbers wrap."""
    buffer = EachPacket()
    for seq, ts in ((65534, 0), (65535, 960), (0, 1920), (1, 2880)):
        _, frame = buffer.add(_packet(seq, ts))
        assert frame is not None and (frame.data, frame.timestamp) == (b"opus-%d" % seq, ts)


def test_repeated_and_overtaken_packets_are_dropped() -> None:
    """A repeat or a packet older than the last forwarded is not sent again out of order."""
    buffer = EachPacket()
    assert buffer.add(_packet(10, 0))[1] is not None
    assert buffer.add(_packet(12, 1920))[1] is not None
    assert buffer.add(_packet(12, 1920))[1] is None
    assert buffer.add(_packet(11, 960))[1] is None
    assert buffer.add(_packet(13, 2880))[1] is not None
