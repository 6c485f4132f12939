"""Server-side audio forwarding: one reader per published track, one bounded queue per subscriber.

The publisher's peer connection yields Opus packets as received (rtc_passthrough; decoded
frames if aiortc's internals differ), each subscriber's peer connection sends them on. A
fan-out task always reads the source, so a track nobody subscribes to never piles up in
memory, and a slow subscriber loses its oldest frames instead of delaying the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_FRAMES = 50  # 1 s of 20 ms audio frames before the oldest are dropped


class ForwardedTrack(MediaStreamTrack):
    """A subscriber's copy of a published track; its id is the LiveKit track sid (the msid)."""

    def __init__(self, kind: str, track_sid: str, max_frames: int) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_sid  # aiortc writes the track id into the SDP's msid line
        self._queue: asyncio.Queue[Frame | Packet[Any] | None] = asyncio.Queue(maxsize=max_frames)
        self.dropped = 0

    def push(self, frame: Frame | Packet[Any] | None) -> None:
        """Queue a frame (None ends the track); the oldest frame goes when the queue is full."""
        if self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    async def recv(self) -> Frame | Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def end(self) -> None:
        """The source is gone: let the sender drain what is queued, then stop."""
        self.push(None)


@dataclass
class _Source:
    track: MediaStreamTrack
    reader: asyncio.Task[None]
    copies: set[ForwardedTrack]


class MediaFanout:
    """Published media by track sid, copied to every subscriber's ForwardedTrack."""

    def __init__(self, max_frames: int = SUBSCRIBER_QUEUE_FRAMES) -> None:
        self._sources: dict[str, _Source] = {}
        self._max_frames = max_frames

    def has(self, track_sid: str) -> bool:
        return track_sid in self._sources

    def add_source(self, track_sid: str, track: MediaStreamTrack) -> None:
        """Start reading a publisher's track (replacing an earlier source for the same sid)."""
        self.remove_source(track_sid)
        copies: set[ForwardedTrack] = set()
        reader = asyncio.get_running_loop().create_task(
            self._read(track, copies), name=f"rtc-fanout-{track_sid}"
        )
        self._sources[track_sid] = _Source(track, reader, copies)

    def subscribe(self, track_sid: str) -> ForwardedTrack | None:
        """A new copy of the track for one subscriber; None when no media has arrived yet."""
        source = self._sources.get(track_sid)
        if source is None:
            return None
        copy = ForwardedTrack(source.track.kind, track_sid, self._max_frames)
        source.copies.add(copy)
        return copy

    def unsubscribe(self, track_sid: str, copy: ForwardedTrack) -> None:
        source = self._sources.get(track_sid)
        if source is not None:
            source.copies.discard(copy)
        copy.end()

    def remove_source(self, track_sid: str) -> None:
        """Stop reading the track; every copy ends after the frames already queued."""
        source = self._sources.pop(track_sid, None)
        if source is None:
            return
        source.reader.cancel()
        for copy in source.copies:
            copy.end()
        source.copies.clear()

    async def close(self) -> None:
        readers = [s.reader for s in self._sources.values()]
        for sid in list(self._sources):
            self.remove_source(sid)
        await asyncio.gather(*readers, return_exceptions=True)

    @staticmethod
    async def _read(track: MediaStreamTrack, copies: set[ForwardedTrack]) -> None:
        try:
            while True:
                frame = await track.recv()
                for copy in list(copies):
                    copy.push(frame)
        except MediaStreamError:
            for copy in list(copies):
                copy.end()
