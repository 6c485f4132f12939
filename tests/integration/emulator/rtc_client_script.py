"""A `livekit.rtc.Room` driven over stdin/stdout, run by the /rtc tests as a child process.

The Rust FFI is process-global and can abort the interpreter at exit when one of its threads
calls back into a finalising Python ("panic in a function that cannot unwind", seen about once
in twenty runs), so the tests keep it out of the pytest process and this script leaves with
os._exit.

Commands, one per line: `connect URL TOKEN`, `publish`, `disconnect`; EOF ends the process.
Every answer and room event is one JSON object per line on stdout, with an "event" key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from livekit import rtc


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def watch(room: rtc.Room) -> None:
    room.on("participant_connected", lambda p: emit("participant_connected", identity=p.identity))
    room.on("participant_disconnected", lambda p: emit("participant_disconnected", identity=p.identity))
    room.on("disconnected", lambda reason: emit("room_disconnected", reason=int(reason)))


async def connect(room: rtc.Room, url: str, token: str) -> None:
    try:
        await room.connect(url, token)
    except rtc.ConnectError as exc:
        emit("failed", error=str(exc))
        return
    emit("connected", sid=room.local_participant.sid, room=room.name,
         remote=sorted(room.remote_participants))


async def publish(room: rtc.Room) -> None:
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await room.local_participant.publish_track(track, options)
    frame = rtc.AudioFrame.create(48000, 1, 480)
    for _ in range(10):  # some real media into the server's peer connection
        await source.capture_frame(frame)
    emit("published", sid=publication.sid, kind=int(publication.kind))


async def main() -> None:
    room = rtc.Room()
    watch(room)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        cmd, *args = line.split()
        if cmd == "connect":
            await connect(room, *args)
        elif cmd == "publish":
            await publish(room)
        elif cmd == "disconnect":
            await room.disconnect()
            emit("disconnected")
        else:
            emit("error", error=f"unknown command {cmd!r}")
    await room.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
