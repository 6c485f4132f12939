"""One server-side aiortc peer connection of an `/rtc` session (the client's publisher PC).

It answers offers (first and renegotiation), applies trickled ICE candidates (buffered until
the offer arrives, because aiortc maps a candidate to a transport by its m-line), reports
"connected", and drains received media so decoded frames do not pile up in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

log = logging.getLogger(__name__)


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


class PeerEndpoint:
    """A server-side peer connection answering one client transport."""

    def __init__(self, name: str, max_buffered: int) -> None:
        self.name = name
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._max_buffered = max_buffered
        self._pending: deque[str] = deque()
        self._pc: RTCPeerConnection | None = None
        self._drains: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "new"

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer (first or renegotiation) and return our answer SDP."""
        pc = self._pc or self._create_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        while self._pending:
            await self._apply(self._pending.popleft())
        await pc.setLocalDescription(await pc.createAnswer())
        # aiortc gathers before resolving setLocalDescription: our candidates are in the SDP.
        return pc.localDescription.sdp

    async def add_candidate(self, candidate_init: str) -> None:
        """Apply a trickled candidate, or buffer it until the offer has been applied."""
        if self._pc is None or self._pc.remoteDescription is None:
            if len(self._pending) >= self._max_buffered:
                raise CandidateError(f"more than {self._max_buffered} candidates before the offer")
            self._pending.append(candidate_init)
            return
        await self._apply(candidate_init)

    async def close(self) -> None:
        """Stop media drains and close the peer connection (idempotent)."""
        self._closed = True
        drains = list(self._drains)
        for task in drains:
            task.cancel()
        # gather re-raises only our own cancellation, not the drains' expected ones.
        await asyncio.gather(*drains, return_exceptions=True)
        if self._pc is not None:
            await self._pc.close()

    async def _apply(self, candidate_init: str) -> None:
        assert self._pc is not None
        await self._pc.addIceCandidate(parse_candidate_init(candidate_init))

    def _create_pc(self) -> RTCPeerConnection:
        # No ICE servers: aiortc would otherwise reach for a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("connectionstatechange", self._on_state)
        pc.on("track", self._on_track)
        self._pc = pc
        return pc

    def _on_state(self) -> None:
        state = self.connection_state
        log.debug("rtc peer %s: %s", self.name, state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.failed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            _drain(track), name=f"rtc-drain-{self.name}-{track.kind}"
        )
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)


async def _drain(track: MediaStreamTrack) -> None:
    """Read and drop frames: aiortc queues every decoded frame until someone reads it."""
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return
