"""Media benchmark parts: a paced tone track, a frame counter with onset times, a direct aiortc
link, and a minimal LiveKit v0 client (aiortc peer connections over the `/rtc` socket).

The same aiortc endpoints serve both legs of the media benchmark, so the only difference
between "direct" and "forwarded" is the path: publisher PC → subscriber PC, or publisher PC →
emulator → subscriber PC. Run as ``python -m bench.media_client URL KEY SECRET CALLS SECONDS``
it is a load process: CALLS two-party calls (both sides publish and listen) for SECONDS, then
one JSON line with the frames expected and received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from typing import ClassVar

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as proto

RATE_HZ = 48000
FRAME_S = 0.02
FRAME_SAMPLES = int(RATE_HZ * FRAME_S)
BURST_EVERY_FRAMES = 25  # a 100 ms tone burst every 500 ms: its onset times the path
BURST_FRAMES = 5
ONSET_RMS = 1000.0  # int16 units; the bursts are ~6,900, silence ~0
PING_EVERY_S = 5.0
SIGNAL_TIMEOUT_S = 15.0


class ToneTrack(MediaStreamTrack):
    """20 ms mono frames in real time: 1 kHz bursts in silence; records when each burst left."""

    kind = "audio"

    def __init__(self, hz: float = 1000.0) -> None:
        super().__init__()
        self._hz = hz
        self._start: float | None = None
        self.sent = 0
        self.onsets_s: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        delay = self._start + self.sent * FRAME_S - now
        if delay > 0:
            await asyncio.sleep(delay)
        phase = self.sent % BURST_EVERY_FRAMES
        samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if phase < BURST_FRAMES:
            t = (np.arange(FRAME_SAMPLES) + self.sent * FRAME_SAMPLES) / RATE_HZ
            samples = (0.3 * 32767 * np.sin(2 * np.pi * self._hz * t)).astype(np.int16)
            if phase == 0:
                self.onsets_s.append(time.monotonic())
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE_HZ
        frame.pts = self.sent * FRAME_SAMPLES
        frame.time_base = Fraction(1, RATE_HZ)
        self.sent += 1
        return frame


class EncodedToneTrack(MediaStreamTrack):
    """The same bursts, Opus-encoded once and replayed as packets: load calls cost no encoding."""

    kind = "audio"
    _period: ClassVar[list[bytes]] = []

    def __init__(self) -> None:
        super().__init__()
        self._source = ToneTrack()
        self.sent = 0
        if not EncodedToneTrack._period:
            EncodedToneTrack._period = _encode_period()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._source.recv()  # for its pacing only
        packet = av.Packet(self._period[self.sent % len(self._period)])
        packet.pts, packet.time_base = frame.pts, frame.time_base
        self.sent += 1
        return packet


def _encode_period() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = RATE_HZ, "stereo", "s16"
    codec.bit_rate, codec.time_base = 64000, Fraction(1, RATE_HZ)
    tone, packets = ToneTrack(), []
    for index in range(BURST_EVERY_FRAMES * 4):
        phase = index % BURST_EVERY_FRAMES
        t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / RATE_HZ
        level = 0.3 * 32767 if phase < BURST_FRAMES else 0.0
        mono = (level * np.sin(2 * np.pi * tone._hz * t)).astype(np.int16)
        stereo = np.repeat(mono, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate, frame.time_base = RATE_HZ, Fraction(1, RATE_HZ)
        frame.pts = index * FRAME_SAMPLES
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets[-BURST_EVERY_FRAMES * 2:]  # two steady periods, after the encoder's delay


@dataclass
class Heard:
    """What one receiver got: samples and RTP-clock position per arrival, burst onset times."""

    arrivals: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic s, n, pts)
    onsets_s: list[float] = field(default_factory=list)
    count_only: bool = False  # load calls: no level analysis
    _loud: bool = False

    def add(self, frame: av.AudioFrame) -> None:
        now = time.monotonic()
        self.arrivals.append((now, frame.samples, frame.pts or 0))
        if self.count_only:
            return
        pcm = frame.to_ndarray().astype(np.float64)
        loud = float(np.sqrt(np.mean(pcm**2))) > ONSET_RMS
        if loud and not self._loud:
            self.onsets_s.append(now)
        self._loud = loud

    def frames_between(self, start_s: float, end_s: float) -> float:
        return sum(n for t, n, _ in self.arrivals if start_s <= t < end_s) / FRAME_SAMPLES

    def expected_between(self, start_s: float, end_s: float) -> float:
        """Frames the sender sent between the first and last that arrived in the window.

        From the RTP clock of what arrived (the sender's own count), so a late or early frame at
        the window's edges is neither a loss nor a gain; only gaps are."""
        inside = [(pts, n) for t, n, pts in self.arrivals if start_s <= t < end_s]
        if not inside:
            return 0.0
        first, last = min(inside), max(inside)
        return (last[0] + last[1] - first[0]) / FRAME_SAMPLES


async def consume(track: MediaStreamTrack, heard: Heard) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            heard.add(await track.recv())


def latencies_s(sent: list[float], heard: list[float]) -> list[float]:
    """Each heard onset minus the latest burst sent before it (within one burst period)."""
    out = []
    for t in heard:
        before = [s for s in sent if s <= t]
        if before and t - before[-1] < BURST_EVERY_FRAMES * FRAME_S:
            out.append(t - before[-1])
    return out


def _pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@dataclass
class Link:
    """One direction of audio, publisher track → receiver, and how to stop it."""

    tone: ToneTrack
    heard: Heard
    closers: list = field(default_factory=list)

    async def close(self) -> None:
        self.tone.stop()
        for close in self.closers:
            await close()


async def direct_link() -> Link:
    """The baseline: a publisher PC sending straight to a receiver PC (no server)."""
    tone, heard, sender, receiver = ToneTrack(), Heard(), _pc(), _pc()
    tasks: list[asyncio.Task[None]] = []
    receiver.on("track", lambda t: tasks.append(asyncio.ensure_future(consume(t, heard))))
    sender.addTrack(tone)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)

    async def close() -> None:
        await sender.close()
        await receiver.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    return Link(tone, heard, [close])


class LkClient:
    """A LiveKit participant over v0 signalling: publisher PC offers, subscriber PC answers."""

    def __init__(self, http: aiohttp.ClientSession, heard: Heard) -> None:
        self._http = http
        self.heard = heard
        self.pub, self.sub = _pc(), _pc()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._published: asyncio.Queue[models.TrackInfo] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.sub.on("track", lambda t: self._tasks.append(asyncio.ensure_future(consume(t, heard))))

    async def join(self, url: str, token: str) -> None:
        self._ws = await self._http.ws_connect(
            f"{url}/rtc?auto_subscribe=1&protocol=16", headers={"Authorization": f"Bearer {token}"})
        first = proto.SignalResponse.FromString((await self._ws.receive(SIGNAL_TIMEOUT_S)).data)
        if first.WhichOneof("message") != "join":
            raise RuntimeError(f"expected a JoinResponse, got {first.WhichOneof('message')}")
        self._tasks += [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._ping())]
        self.pub.createDataChannel("_reliable")
        await self._negotiate()

    async def publish(self, tone: MediaStreamTrack) -> None:
        await self._connected(self.pub)  # aiortc: renegotiate only on a settled connection
        await self._send(proto.SignalRequest(add_track=proto.AddTrackRequest(
            cid=tone.id, name="tone", type=models.TrackType.AUDIO,
            source=models.TrackSource.MICROPHONE)))
        await asyncio.wait_for(self._published.get(), SIGNAL_TIMEOUT_S)
        self.pub.addTrack(tone)
        await self._negotiate()

    async def _negotiate(self) -> None:
        await self.pub.setLocalDescription(await self.pub.createOffer())
        await self._send(proto.SignalRequest(offer=proto.SessionDescription(
            type="offer", sdp=self.pub.localDescription.sdp)))
        sdp = await asyncio.wait_for(self._answers.get(), SIGNAL_TIMEOUT_S)
        await self.pub.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    @staticmethod
    async def _connected(pc: RTCPeerConnection) -> None:
        async with asyncio.timeout(SIGNAL_TIMEOUT_S):
            while pc.connectionState != "connected":
                await asyncio.sleep(0.01)

    async def _send(self, req: proto.SignalRequest) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(req.SerializeToString())

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                return
            res = proto.SignalResponse.FromString(msg.data)
            kind = res.WhichOneof("message")
            if kind == "answer":
                self._answers.put_nowait(res.answer.sdp)
            elif kind == "track_published":
                self._published.put_nowait(res.track_published.track)
            elif kind == "offer":
                offer = RTCSessionDescription(sdp=res.offer.sdp, type="offer")
                await self.sub.setRemoteDescription(offer)
                await self.sub.setLocalDescription(await self.sub.createAnswer())
                await self._send(proto.SignalRequest(answer=proto.SessionDescription(
                    type="answer", sdp=self.sub.localDescription.sdp, id=res.offer.id)))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY_S)
            ping = proto.Ping(timestamp=int(time.time() * 1000))
            await self._send(proto.SignalRequest(ping_req=ping))

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(proto.SignalRequest(leave=proto.LeaveRequest()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        await self.pub.close()
        await self.sub.close()


def token(key: str, secret: str, room: str, identity: str) -> str:
    return (api.AccessToken(key, secret).with_identity(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .with_ttl(timedelta(minutes=30)).to_jwt())


@dataclass
class Call:
    """A two-party call through the server: each side publishes a tone and hears the other."""

    a: LkClient
    b: LkClient
    tones: tuple[MediaStreamTrack, MediaStreamTrack]

    @classmethod
    async def start(cls, http: aiohttp.ClientSession, url: str, key: str, secret: str,
                    *, both_ways: bool = True, load: bool = False) -> Call:
        room = f"bench-media-{uuid.uuid4().hex[:8]}"
        a, b = LkClient(http, Heard(count_only=load)), LkClient(http, Heard(count_only=load))
        await a.join(url, token(key, secret, room, "a"))
        await b.join(url, token(key, secret, room, "b"))
        tones = (EncodedToneTrack(), EncodedToneTrack()) if load else (ToneTrack(), ToneTrack())
        await a.publish(tones[0])
        if both_ways:
            await b.publish(tones[1])
        return cls(a, b, tones)

    async def close(self) -> None:
        for tone in self.tones:
            tone.stop()
        await self.a.close()
        await self.b.close()


async def _load(url: str, key: str, secret: str, calls: int, seconds: float) -> dict[str, float]:
    """CALLS calls both ways; frames expected vs received over the last SECONDS - 1 s."""
    async with aiohttp.ClientSession() as http:
        started = [await Call.start(http, url, key, secret, load=True) for _ in range(calls)]
        try:
            await asyncio.sleep(1.0)  # let every path fill its jitter buffers
            t0 = time.monotonic()
            await asyncio.sleep(seconds)
            t1 = time.monotonic()
            heard = [h for c in started for h in (c.a.heard, c.b.heard)]
            received = sum(h.frames_between(t0, t1) for h in heard)
            expected = sum(h.expected_between(t0, t1) or (t1 - t0) / FRAME_S for h in heard)
        finally:
            for call in started:
                await call.close()
    per = [round(h.frames_between(t0, t1)) for h in heard]
    realtime = len(heard) * (t1 - t0) / FRAME_S  # what real-time delivery would have brought
    return {"expected": expected, "received": received, "realtime": realtime, "per_receiver": per}


if __name__ == "__main__":
    url_, key_, secret_, calls_, seconds_ = sys.argv[1:6]
    result = asyncio.run(_load(url_, key_, secret_, int(calls_), float(seconds_)))
    print(json.dumps(result), flush=True)
