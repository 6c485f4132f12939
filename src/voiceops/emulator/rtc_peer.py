"""One server-side aiortc peer connection of an `/rtc` session.

Two roles, as in the Go server: the *answerer* (the client's publisher PC in v0, the only PC
in v1 single-PC mode) answers the client's offers; the *offerer* (the v0 subscriber PC) offers
the tracks the participant is subscribed to. Both apply trickled ICE candidates (buffered
until the remote description is set, because aiortc maps a candidate to a transport by its
m-line), report "connected", hand received tracks to `on_track`, and send `ForwardedTrack`s
under the stream id "PA_xxx|TR_xxx" that the SDKs map remote tracks with.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import candidate_from_sdp

from voiceops.emulator.rtc_media import ForwardedTrack
from voiceops.emulator.rtc_passthrough import forward_encoded
from voiceops.emulator.rtc_sdp import bundled_mids, moot_candidate, sections

log = logging.getLogger(__name__)

OnTrack = Callable[[MediaStreamTrack, str], None]  # (track, mid)
OnDataChannel = Callable[[Any], None]  # an aiortc RTCDataChannel the client opened
SETTLE_TIMEOUT_S = 10.0


class CandidateError(ValueError):
    """A trickled candidate that cannot be parsed."""


def parse_candidate_init(candidate_init: str) -> RTCIceCandidate | None:
    """An aiortc candidate from the client's JSON candidateInit; None means end-of-candidates."""
    if not candidate_init.strip():
        return None
    try:
        init = json.loads(candidate_init)
        line = str(init.get("candidate") or "")
    except (ValueError, AttributeError) as exc:
        raise CandidateError(f"candidateInit is not a JSON object: {exc}") from None
    if not line:
        return None
    try:
        candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    except (AssertionError, ValueError, IndexError) as exc:
        raise CandidateError(f"unparsable ICE candidate {line!r}: {exc}") from None
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0  # single-bundle offers: everything rides on m-line 0
    return candidate


def _set_stream_id(transceiver: RTCRtpTransceiver, stream_id: str) -> None:
    # aiortc has no API for the msid stream id; LiveKit clients need "PA_xxx|TR_xxx" there.
    transceiver.sender._stream_id = stream_id


class PeerEndpoint:
    """A server-side peer connection for one client transport (answerer or offerer)."""

    def __init__(
        self, name: str, max_buffered: int, on_track: OnTrack | None = None,
        on_datachannel: OnDataChannel | None = None,
    ) -> None:
        self.name = name
        self._on_datachannel_cb = on_datachannel
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._max_buffered = max_buffered
        self._on_track_cb = on_track
        self._pending: deque[str] = deque()
        self._pc: RTCPeerConnection | None = None
        self._used_mids: set[str] = set()  # transceivers that ever carried a forwarded track
        # Our own flag: aiortc's `remoteDescription` re-serialises the whole SDP on every read,
        # which cost ~1 ms per trickled candidate (a client trickles dozens per join).
        self._has_remote = False
        self._closed = False
        # From the remote SDP: which trickled candidates no transport can use (see rtc_sdp).
        self._bundled: frozenset[str] = frozenset()
        self._mids: tuple[str, ...] = ()

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "new"

    @property
    def pc(self) -> RTCPeerConnection:
        return self._pc or self._create_pc()

    # -- answerer --------------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer (first or renegotiation) and return our answer SDP."""
        pc = self.pc
        await self._settle()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self._remote_set(offer_sdp)
        await self._flush_candidates()
        await pc.setLocalDescription(await pc.createAnswer())
        # aiortc gathers before resolving setLocalDescription: our candidates are in the SDP.
        return pc.localDescription.sdp

    def attach(self, track: ForwardedTrack, stream_id: str) -> bool:
        """Send `track` on a client-offered receive m-line; False when a new one must be asked for.

        The Go server does the same in single-PC mode: it asks the client for more m-lines with
        MediaSectionsRequirement, and the client's next offer carries them.
        """
        pc = self.pc
        free = [t for t in pc.getTransceivers() if self._is_free(t, track.kind)]
        if free:
            transceiver = free[0]
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendrecv"  # keep receiving if the client also sends here
        else:
            transceiver = pc.addTransceiver(track, direction="sendrecv")
        _set_stream_id(transceiver, stream_id)
        if transceiver.mid is not None:
            self._used_mids.add(transceiver.mid)
        return bool(free)

    def _is_free(self, transceiver: RTCRtpTransceiver, kind: str) -> bool:
        return (
            transceiver.kind == kind
            and transceiver.mid is not None
            and transceiver.mid not in self._used_mids
            and transceiver.sender.track is None
            and getattr(transceiver, "_offerDirection", None) in ("sendonly", "sendrecv")
        )

    # -- offerer ---------------------------------------------------------------------------

    def add_send(self, track: ForwardedTrack, stream_id: str) -> None:
        """Add a send-only m-line for `track`; the caller then offers."""
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        _set_stream_id(transceiver, stream_id)

    async def offer(self) -> str:
        pc = self.pc
        await self._settle()
        await pc.setLocalDescription(await pc.createOffer())
        for transceiver in pc.getTransceivers():
            if transceiver.mid is not None and transceiver.sender.track is not None:
                self._used_mids.add(transceiver.mid)
        return pc.localDescription.sdp

    async def apply_answer(self, answer_sdp: str) -> None:
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        self._remote_set(answer_sdp)
        await self._flush_candidates()

    @property
    def awaiting_answer(self) -> bool:
        return self._pc is not None and self._pc.signalingState == "have-local-offer"

    # -- both ------------------------------------------------------------------------------

    def detach(self, track_sid: str) -> bool:
        """Stop sending the track with this sid (its m-line goes inactive); False if not sent."""
        if self._pc is None:
            return False
        for transceiver in self._pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None and track.id == track_sid:
                sending_only = transceiver.direction == "sendonly"
                transceiver.direction = "inactive" if sending_only else "recvonly"
                if isinstance(track, ForwardedTrack):
                    track.end()
                return True
        return False

    def mid_to_track_id(self) -> dict[str, str]:
        """mid → track sid of each m-line carrying a forwarded track (single-PC clients need it)."""
        if self._pc is None:
            return {}
        return {
            t.mid: t.sender.track.id
            for t in self._pc.getTransceivers()
            if t.mid is not None and isinstance(t.sender.track, ForwardedTrack)
            and t.sender.track.readyState == "live"
        }

    async def add_candidate(self, candidate_init: str) -> None:
        """Apply a trickled candidate, or buffer it until the remote description is set."""
        if self._pc is None or not self._has_remote:
            if len(self._pending) >= self._max_buffered:
                raise CandidateError(f"more than {self._max_buffered} candidates before the SDP")
            self._pending.append(candidate_init)
            return
        await self._apply(candidate_init)

    async def close(self) -> None:
        """End forwarded tracks and close the peer connection (idempotent)."""
        self._closed = True
        if self._pc is not None:
            for transceiver in self._pc.getTransceivers():
                if isinstance(transceiver.sender.track, ForwardedTrack):
                    transceiver.sender.track.end()
            await self._pc.close()

    async def _settle(self) -> None:
        """Before a renegotiation, let the previous one finish connecting.

        aiortc starts a new m-line's RTP receiver or sender only from the connect step of the
        negotiation that added it, and only once DTLS is up: a renegotiation applied while the
        first one is still connecting leaves that m-line silent for good.
        """
        pc = self._pc
        if pc is None or not self._has_remote or pc.connectionState != "connecting":
            return
        try:
            await asyncio.wait_for(self.connected.wait(), SETTLE_TIMEOUT_S)
        except TimeoutError:
            log.warning("rtc_renegotiate_early peer=%s", self.name)

    def _remote_set(self, sdp: str) -> None:
        self._has_remote = True
        self._bundled = bundled_mids(sdp)
        self._mids = tuple(s.mid for s in sections(sdp))

    async def _flush_candidates(self) -> None:
        while self._pending:
            await self._apply(self._pending.popleft())

    async def _apply(self, candidate_init: str) -> None:
        assert self._pc is not None
        if moot_candidate(candidate_init, self._bundled, self._mids):
            return
        await self._pc.addIceCandidate(parse_candidate_init(candidate_init))

    def _create_pc(self) -> RTCPeerConnection:
        # No ICE servers: aiortc would otherwise reach for a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("connectionstatechange", self._on_state)
        pc.on("track", self._on_track)
        if self._on_datachannel_cb is not None:
            pc.on("datachannel", self._on_datachannel_cb)
        self._pc = pc
        return pc

    def _on_state(self) -> None:
        state = self.connection_state
        log.debug("rtc_peer_state peer=%s state=%s", self.name, state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.failed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self._closed or self._pc is None:
            return
        transceiver = next(
            (t for t in self._pc.getTransceivers() if t.receiver.track is track), None
        )
        if transceiver is not None and track.kind == "audio":
            forward_encoded(transceiver.receiver, track)  # before aiortc starts the receiver
        mid = transceiver.mid if transceiver is not None else None
        if self._on_track_cb is not None:
            self._on_track_cb(track, mid or "")
