"""The signalling path's SDP line scan agrees with aiortc's full parse, and tells which trickled
candidates no transport can use (TCP ones, those of m-lines bundled onto another)."""

from __future__ import annotations

import json

import pytest
from aiortc.sdp import SessionDescription

from voiceops.emulator import rtc_sdp

OFFER = "\r\n".join([  # noqa: FLY002 - one SDP line per item reads as the SDP
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1 2 3",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendonly",
    "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:1", "a=recvonly",
    "a=rtpmap:96 VP8/90000",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:2",
    "a=rtpmap:111 opus/48000/2",
    "m=audio 0 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:3", "a=sendrecv",
    "a=rtpmap:111 opus/48000/2",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=mid:4",
    "a=sctp-port:5000", "",
])


def test_send_mids_agree_with_aiortc() -> None:
    """Sending audio/video sections (sendonly/sendrecv, port 0 excluded), as aiortc reads them."""
    parsed = SessionDescription.parse(OFFER)
    expected = {str(m.rtp.muxId) for m in parsed.media if m.kind in ("audio", "video")
                and m.port != 0 and m.direction in ("sendonly", "sendrecv")}
    assert rtc_sdp.client_send_mids(OFFER) == expected == {"0"}
    assert [s.mid for s in rtc_sdp.sections(OFFER)] == [str(m.rtp.muxId) for m in parsed.media]


def test_bundled_mids_are_the_group_after_its_tag() -> None:
    """The BUNDLE tag (first mid) keeps its transport; the others ride on it."""
    assert rtc_sdp.bundled_mids(OFFER) == {"1", "2", "3"}
    assert rtc_sdp.bundled_mids(OFFER.replace("a=group:BUNDLE 0 1 2 3\r\n", "")) == set()


def _init(line: str, mid: str | None = "0", index: int | None = None) -> str:
    return json.dumps({"candidate": line, "sdpMid": mid, "sdpMLineIndex": index})


UDP = "candidate:1 1 udp 2122194687 192.0.2.2 45783 typ host generation 0"
TCP = "candidate:2 1 tcp 1518214911 192.0.2.2 9 typ host tcptype active generation 0"


@pytest.mark.parametrize(("candidate_init", "moot"), [
    (_init(UDP), False),                          # the BUNDLE tag's transport: used
    (_init(UDP, mid="2"), True),                  # bundled onto mid 0: aiortc would drop it
    (_init(UDP, mid=None, index=1), True),        # the same, named by m-line index
    (_init(UDP, mid=None, index=0), False),
    (_init(UDP, mid=None, index=9), False),       # out of range: left to aiortc
    (_init(TCP), True),                           # aioice pairs UDP only
    ("not json", False),                          # malformed: the parser reports it
    (_init(""), False),                           # end-of-candidates
])
def test_moot_candidates(candidate_init: str, moot: bool) -> None:
    """Which trickled candidates are dropped before aiortc parses them."""
    mids = tuple(s.mid for s in rtc_sdp.sections(OFFER))
    assert rtc_sdp.moot_candidate(candidate_init, rtc_sdp.bundled_mids(OFFER), mids) is moot
