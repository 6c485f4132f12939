"""A `livekit.rtc.Room` driven over stdin/stdout, run by the /rtc tests as a child process.

The Rust FFI is process-global and can abort the interpreter at exit when one of its threads
calls back into a finalising Python ("panic in a function that cannot unwind", seen about once
in twenty runs), so the tests keep it out of the pytest process and this script leaves with
os._exit.

Commands, one per line: `connect URL TOKEN [v0] [manual]` (v0: the SDK's two-PC mode;
manual: no auto-subscribe), `publish` (a short silent track), `tone HZ SECONDS` (publish a
sine tone for that long), `unpublish`, `mute`, `unmute`, `subscribe TRACK_SID`,
`listen TRACK_SID SECONDS` (record that remote track, then report its energy and dominant
frequency), `data TEXT [lossy] [to=IDENTITY,…]` (publish_data, topic "test"), `text TEXT`
(send_text, topic "chat"), `rpc IDENTITY PAYLOAD` (perform_rpc "echo"; every client answers
"echo:PAYLOAD"), `attrs KEY=VALUE …` (set_attributes; an empty VALUE deletes), `disconnect`;
EOF ends the process. Every answer and room event is one JSON object per line on stdout, with
an "event" key; SDK log records at WARNING and above are events too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time

import numpy as np
from livekit import rtc

RATE_HZ = 48000
FRAME_SAMPLES = 480  # 10 ms


_STDOUT = threading.Lock()  # SDK log records arrive on the FFI's thread


def emit(event: str, **fields: object) -> None:
    line = json.dumps({"event": event, **fields}) + "\n"
    with _STDOUT:  # one write per line: no event is split by another thread's
        sys.stdout.write(line)
        sys.stdout.flush()


class _LogEvents(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        emit("log", level=record.levelname, message=record.getMessage())


def watch(room: rtc.Room) -> None:
    room.on("participant_connected", lambda p: emit("participant_connected", identity=p.identity))
    room.on(
        "participant_disconnected", lambda p: emit("participant_disconnected", identity=p.identity)
    )
    room.on("disconnected", lambda reason: emit("room_disconnected", reason=int(reason)))
    room.on("track_published", lambda pub, p: emit(
        "track_published", identity=p.identity, sid=pub.sid, kind=int(pub.kind)))
    room.on(
        "track_unpublished",
        lambda pub, p: emit("track_unpublished", identity=p.identity, sid=pub.sid),
    )
    room.on(
        "track_subscribed",
        lambda track, pub, p: emit(
            "track_subscribed",
            identity=p.identity,
            sid=pub.sid,
            track_sid=track.sid,
            kind=int(track.kind),
        ),
    )
    room.on(
        "track_unsubscribed",
        lambda track, pub, p: emit("track_unsubscribed", identity=p.identity, sid=pub.sid),
    )
    room.on("local_track_subscribed", lambda track: emit("local_track_subscribed", sid=track.sid))
    room.on("track_muted", lambda p, pub: emit("track_muted", identity=p.identity, sid=pub.sid))
    room.on("track_unmuted", lambda p, pub: emit("track_unmuted", identity=p.identity, sid=pub.sid))
    room.on("data_received", lambda packet: emit(
        "data_received", identity=packet.participant.identity if packet.participant else None,
        data=packet.data.decode(), topic=packet.topic, kind=int(packet.kind)))
    room.on(
        "participant_attributes_changed",
        lambda changed, p: emit(
            "attributes_changed",
            identity=p.identity,
            changed=dict(changed),
            attributes=dict(p.attributes),
        ),
    )
    room.on("transcription_received", lambda segments, p, _pub: emit(
        "transcription_received", identity=p.identity if p else None,
        texts=[s.text for s in segments]))


def watch_streams(room: rtc.Room, tasks: set[asyncio.Task[None]]) -> None:
    """Text streams on "chat" and "lk.transcription" are read whole and reported."""

    async def read(reader: rtc.TextStreamReader, identity: str) -> None:
        text = await reader.read_all()
        emit("text_received", identity=identity, topic=reader.info.topic, text=text,
             attributes=dict(reader.info.attributes or {}))

    def handler(reader: rtc.TextStreamReader, identity: str) -> None:
        task = asyncio.get_running_loop().create_task(read(reader, identity))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for topic in ("chat", "lk.transcription"):
        room.register_text_stream_handler(topic, handler)


class Client:
    def __init__(self) -> None:
        self.room = rtc.Room()
        watch(self.room)
        self.publication: rtc.LocalTrackPublication | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        watch_streams(self.room, self.tasks)

    async def _echo(self, data: rtc.RpcInvocationData) -> str:
        emit("rpc_invoked", caller=data.caller_identity, payload=data.payload)
        return f"echo:{data.payload}"

    async def data(self, text: str, *flags: str) -> None:
        to = next((f[3:].split(",") for f in flags if f.startswith("to=")), [])
        await self.room.local_participant.publish_data(
            text, reliable="lossy" not in flags, destination_identities=to, topic="test")
        emit("data_sent", data=text)

    async def text(self, text: str) -> None:
        info = await self.room.local_participant.send_text(text, topic="chat")
        emit("text_sent", id=info.stream_id)

    async def rpc(self, identity: str, payload: str) -> None:
        try:
            answer = await self.room.local_participant.perform_rpc(
                destination_identity=identity, method="echo", payload=payload, response_timeout=10)
        except rtc.RpcError as exc:
            emit("rpc_failed", code=exc.code, message=exc.message)
            return
        emit("rpc_result", payload=answer)

    async def attrs(self, *pairs: str) -> None:
        try:
            await self.room.local_participant.set_attributes(dict(p.split("=", 1) for p in pairs))
        except Exception as exc:  # the SDK raises on a refused request; the test reads why
            emit("attrs_failed", error=str(exc))
            return
        emit("attrs_set", attributes=dict(self.room.local_participant.attributes))

    async def connect(self, url: str, token: str, *flags: str) -> None:
        options = rtc.RoomOptions(auto_subscribe="manual" not in flags)
        if "v0" in flags:
            options.single_peer_connection = False
        started = time.monotonic()
        try:
            await self.room.connect(url, token, options)
        except rtc.ConnectError as exc:
            emit("failed", error=str(exc))
            return
        self.room.local_participant.register_rpc_method("echo", self._echo)
        emit("connected", sid=self.room.local_participant.sid, room=self.room.name,
             remote=sorted(self.room.remote_participants), elapsed_s=time.monotonic() - started)

    async def publish(self, seconds: float = 0.0, hz: float = 0.0) -> None:
        source = rtc.AudioSource(RATE_HZ, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        self.publication = await self.room.local_participant.publish_track(track, options)
        emit("published", sid=self.publication.sid, kind=int(self.publication.kind))
        task = asyncio.get_running_loop().create_task(play_tone(source, hz, seconds))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def unpublish(self) -> None:
        assert self.publication is not None
        await self.room.local_participant.unpublish_track(self.publication.sid)
        emit("unpublished", sid=self.publication.sid)

    def mute(self, muted: bool) -> None:
        assert self.publication is not None
        track = self.publication.track
        (track.mute if muted else track.unmute)()
        emit("muted" if muted else "unmuted", sid=self.publication.sid)

    def subscribe(self, sid: str) -> None:
        for participant in self.room.remote_participants.values():
            if sid in participant.track_publications:
                participant.track_publications[sid].set_subscribed(True)
                emit("subscribing", sid=sid)
                return
        emit("error", error=f"no remote publication {sid}")

    async def listen(self, sid: str, seconds: float) -> None:
        track = next(
            (
                p.track_publications[sid].track
                for p in self.room.remote_participants.values()
                if sid in p.track_publications
            ),
            None,
        )
        if track is None:
            emit("error", error=f"no subscribed track {sid}")
            return
        samples: list[np.ndarray] = []
        stream = rtc.AudioStream(track, sample_rate=RATE_HZ, num_channels=1)
        try:
            async with asyncio.timeout(seconds):
                async for event in stream:
                    samples.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
        except TimeoutError:
            pass
        finally:
            await stream.aclose()
        emit("heard", sid=sid, frames=len(samples), **analyse(samples))


def analyse(chunks: list[np.ndarray]) -> dict[str, float]:
    """RMS (int16 units) and the dominant frequency of the loudest half second."""
    if not chunks:
        return {"rms": 0.0, "dominant_hz": 0.0}
    pcm = np.concatenate(chunks).astype(np.float64)
    window = pcm[-RATE_HZ // 2:] if len(pcm) >= RATE_HZ // 2 else pcm
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    freqs = np.fft.rfftfreq(len(window), 1 / RATE_HZ)
    return {
        "rms": float(np.sqrt(np.mean(pcm**2))),
        "dominant_hz": float(freqs[int(np.argmax(spectrum))]),
    }


async def play_tone(source: rtc.AudioSource, hz: float, seconds: float) -> None:
    """Capture a sine (or silence) in 10 ms frames; capture_frame paces it in real time."""
    amplitude = 0.3 * 32767 if hz else 0.0
    total = max(int(seconds * RATE_HZ / FRAME_SAMPLES), 10)
    for index in range(total):
        t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / RATE_HZ
        frame = rtc.AudioFrame.create(RATE_HZ, 1, FRAME_SAMPLES)
        np.copyto(np.frombuffer(frame.data, dtype=np.int16),
                  (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16))
        await source.capture_frame(frame)


async def main() -> None:  # noqa: PLR0912 - one branch per stdin command
    logging.getLogger("livekit").addHandler(_LogEvents(logging.WARNING))
    client = Client()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        cmd, *args = line.split()
        if cmd == "connect":
            await client.connect(*args)
        elif cmd == "publish":
            await client.publish()
        elif cmd == "tone":
            await client.publish(seconds=float(args[1]), hz=float(args[0]))
        elif cmd == "unpublish":
            await client.unpublish()
        elif cmd in ("mute", "unmute"):
            client.mute(cmd == "mute")
        elif cmd == "subscribe":
            client.subscribe(args[0])
        elif cmd == "listen":
            await client.listen(args[0], float(args[1]))
        elif cmd == "data":
            await client.data(*args)
        elif cmd == "text":
            await client.text(" ".join(args))
        elif cmd == "rpc":
            await client.rpc(args[0], args[1])
        elif cmd == "attrs":
            await client.attrs(*args)
        elif cmd == "disconnect":
            await client.room.disconnect()
            emit("disconnected")
        else:
            emit("error", error=f"unknown command {cmd!r}")
    for task in list(client.tasks):
        task.cancel()
    await client.room.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
