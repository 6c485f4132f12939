"""A caller on the ``livekit`` rtc SDK, driven over stdin/stdout.

Run as ``python -m voiceops.testing.caller_script``.

It behaves like a phone: once connected it publishes a microphone that sends silence in real
time, and speech when told to; it records the agent's audio with arrival times. The rtc FFI
is process-global (and can abort an interpreter at exit), so tests and benchmarks keep it in
this child process and it leaves with ``os._exit``.

Commands, one per line: ``connect URL TOKEN``, ``speak PCM_PATH`` (int16 mono 48 kHz),
``wait_speech TIMEOUT_S`` (the agent's audio turns loud), ``barge PCM_PATH AFTER_S TIMEOUT_S``
(speak once the agent has talked for AFTER_S), ``wait_quiet SILENCE_S TIMEOUT_S``
(the agent has been silent that long), ``dump PCM_PATH [SINCE_TS]`` (what it heard),
``level FROM_TS TO_TS`` (its loudness then), ``went_quiet SINCE_TS GAP_S TIMEOUT_S``
(when it first fell silent for GAP_S). Every
answer is one JSON object per line with an ``event`` key; times are ``time.time()`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

RATE_HZ = 48000
FRAME_SAMPLES = 480  # 10 ms
LOUD_RMS = 300.0  # int16 units: speech is thousands, digital silence is 0
# The microphone keeps MIC_LEAD_S of audio queued in the SDK's source, which plays it out on its
# own 10 ms clock as a sound card would: a stall of this process shorter than the lead leaves no
# gap in what the agent hears. Speech is stamped when it leaves that queue (capture time + what
# is queued then); stamped at capture_frame, as before, the end of speech came 15-38 ms early.
MIC_QUEUE_MS = 200
MIC_LEAD_S = 0.06
FRAME_S = FRAME_SAMPLES / RATE_HZ


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


class Caller:
    def __init__(self) -> None:
        self.room = rtc.Room()
        self.source = rtc.AudioSource(RATE_HZ, 1, queue_size_ms=MIC_QUEUE_MS)
        self.pending: deque[np.ndarray] = deque()  # 10 ms frames of speech still to send
        self.spoken: asyncio.Event = asyncio.Event()
        self.last_speech_ts = 0.0
        self.first_speech_ts = 0.0
        # (arrival time, RMS, samples) per received frame
        self.recording: list[tuple[float, float, np.ndarray]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.room.on("track_subscribed", self._on_track)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_track(self, track: rtc.Track, pub: rtc.RemoteTrackPublication,
                  participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            emit("agent_track", identity=participant.identity, sid=pub.sid)
            self._spawn(self._record(track))

    async def connect(self, url: str, token: str) -> None:
        try:
            await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        except rtc.ConnectError as exc:
            emit("failed", error=str(exc))
            return
        track = rtc.LocalAudioTrack.create_audio_track("mic", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        pub = await self.room.local_participant.publish_track(track, options)
        self._spawn(self._microphone())
        emit("connected", identity=self.room.local_participant.identity, mic=pub.sid)

    async def _microphone(self) -> None:
        """10 ms frames, speech when queued, else silence, kept MIC_LEAD_S ahead of playout.

        After a stall longer than the lead the source has run dry; it refills at once (the
        audio then is late, never bunched up beyond the lead)."""
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        while True:
            chunk = self.pending.popleft() if self.pending else silence
            frame = rtc.AudioFrame(chunk.tobytes(), RATE_HZ, 1, FRAME_SAMPLES)
            await self.source.capture_frame(frame)
            if chunk is not silence and rms(chunk) > LOUD_RMS:
                leaves = time.time() + self.source.queued_duration  # this frame's end plays out
                self.first_speech_ts = self.first_speech_ts or leaves - FRAME_S
                self.last_speech_ts = leaves
            if chunk is not silence and not self.pending:
                self.spoken.set()
            await asyncio.sleep(max(0.0, self.source.queued_duration - MIC_LEAD_S))

    async def _record(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE_HZ, num_channels=1)
        try:
            async for ev in stream:
                samples = np.frombuffer(ev.frame.data, np.int16).copy()
                self.recording.append((time.time(), rms(samples), samples))
        finally:
            await stream.aclose()

    async def speak(self, path: str) -> None:
        pcm = np.frombuffer(Path(path).read_bytes(), dtype=np.int16)
        pcm = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME_SAMPLES, dtype=np.int16)])
        self.spoken.clear()
        self.first_speech_ts = 0.0
        started = time.time()
        self.pending.extend(pcm.reshape(-1, FRAME_SAMPLES))
        await self.spoken.wait()
        emit("spoke", started_ts=started, speech_start_ts=self.first_speech_ts,
             speech_end_ts=self.last_speech_ts)

    def _last_loud(self) -> float:
        return next((t for t, level, _ in reversed(self.recording) if level > LOUD_RMS), 0.0)

    async def _until_loud(self, since: float, timeout_s: float) -> float:
        seen = 0
        async with asyncio.timeout(timeout_s):
            while True:
                for t, level, _ in self.recording[seen:]:
                    if t >= since and level > LOUD_RMS:
                        return t
                seen = len(self.recording)
                await asyncio.sleep(0.02)

    async def wait_speech(self, timeout_s: float) -> None:
        since = time.time()
        ts = await self._until_loud(since, timeout_s)
        emit("agent_speech", ts=ts, waited_s=ts - since)

    async def barge(self, path: str, after_s: float, timeout_s: float) -> None:
        """Like a caller who cuts in: once the agent talks, wait ``after_s``, then speak."""
        agent_ts = await self._until_loud(time.time(), timeout_s)
        await asyncio.sleep(max(0.0, agent_ts + after_s - time.time()))
        emit("barging", agent_speech_ts=agent_ts)
        await self.speak(path)

    async def wait_quiet(self, silence_s: float, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not (last := self._last_loud()) or time.time() - last < silence_s:
                await asyncio.sleep(0.05)
        emit("agent_quiet", last_loud_ts=last)

    async def went_quiet(self, since_ts: float, gap_s: float, timeout_s: float) -> None:
        """The start of the first silence of ``gap_s`` in the agent's audio after ``since_ts``."""
        async with asyncio.timeout(timeout_s):
            while True:
                quiet_from, quiet_s = None, 0.0
                for t, level, samples in self.recording:
                    if t < since_ts:
                        continue
                    if level > LOUD_RMS:
                        quiet_from, quiet_s = None, 0.0
                        continue
                    quiet_from = quiet_from or t - len(samples) / RATE_HZ
                    quiet_s += len(samples) / RATE_HZ
                    if quiet_s >= gap_s:
                        emit("went_quiet", ts=quiet_from)
                        return
                await asyncio.sleep(0.1)

    def level(self, from_ts: float, to_ts: float) -> None:
        """RMS of the agent's audio that arrived between two times."""
        parts = [s for t, _, s in self.recording if from_ts <= t < to_ts]
        emit("level", rms=rms(np.concatenate(parts)) if parts else 0.0, frames=len(parts))

    def dump(self, path: str, since_ts: float = 0.0) -> None:
        """The agent's audio received since ``since_ts`` (raw int16 mono 48 kHz)."""
        frames = [(t, level, s) for t, level, s in self.recording if t >= since_ts]
        Path(path).write_bytes(b"".join(s.tobytes() for _, _, s in frames))
        emit("dumped", path=path, samples=sum(len(s) for _, _, s in frames),
             loud_s=sum(len(s) for _, level, s in frames if level > LOUD_RMS) / RATE_HZ)


async def _command(caller: Caller, cmd: str, args: list[str]) -> None:
    if cmd == "connect":
        await caller.connect(*args)
    elif cmd == "speak":
        await caller.speak(args[0])
    elif cmd == "wait_speech":
        await caller.wait_speech(float(args[0]))
    elif cmd == "barge":
        await caller.barge(args[0], float(args[1]), float(args[2]))
    elif cmd == "wait_quiet":
        await caller.wait_quiet(float(args[0]), float(args[1]))
    elif cmd == "went_quiet":
        await caller.went_quiet(float(args[0]), float(args[1]), float(args[2]))
    elif cmd == "level":
        caller.level(float(args[0]), float(args[1]))
    elif cmd == "dump":
        caller.dump(args[0], float(args[1]) if len(args) > 1 else 0.0)
    else:
        emit("error", error=f"unknown command {cmd!r}")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    caller = Caller()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        cmd, *args = line.split()
        try:
            await _command(caller, cmd, args)
        except TimeoutError:
            emit("timeout", command=cmd)
    for task in list(caller.tasks):
        task.cancel()
    await caller.room.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
