"""A tiny real livekit-agents AgentServer for the emulator tests.

Run as a subprocess (one AgentServer per OS process). It appends JSON lines to the file named
by --out: registered, load, job_request, answering, job_started, connected, side_joined, side_left,
side_disconnected, job_shutdown, linger_done, log (agent warnings), stopped.

A dispatch's metadata (JSON) steers its job, so one worker serves several scenarios:
`answer_delay_s` (answer the JobRequest that late), `side_room` (join the room with the job's
token on a separate rtc.Room, which the job does not watch, so leaving it does not end the
job), `leave` (leave that room at once), `linger_s` (stay in it that long after shutdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobRequest

OUT_ENV = "VOICEOPS_TEST_WORKER_OUT"
CONNECT_ENV = "VOICEOPS_TEST_WORKER_CONNECT"
LOAD_FILE_ENV = "VOICEOPS_TEST_WORKER_LOAD_FILE"
ECHO_ENV = "VOICEOPS_TEST_WORKER_ECHO"
AGENT_TONE_HZ = 880.0
_background: set[asyncio.Task[None]] = set()  # the job's media tasks, kept referenced


def report(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "ts": time.time(), "pid": os.getpid(), **fields})
    with open(os.environ[OUT_ENV], "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class _WarningsToReport(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        report("log", level=record.levelname, logger=record.name, msg=record.getMessage())


def _steering(metadata: str) -> dict[str, Any]:
    try:
        parsed = json.loads(metadata)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def _side_room(ctx: JobContext, steer: dict[str, Any]) -> None:
    """Join as the job's agent on a Room the job does not watch (see the module docstring)."""
    room = rtc.Room()
    job_id = ctx.job.id
    room.on(
        "disconnected",
        lambda reason: report("side_disconnected", job_id=job_id, reason=int(reason)),
    )
    # The assignment's own url and token: the agent participant exactly as ctx.connect() joins.
    await room.connect(ctx._info.url, ctx._info.token)
    report("side_joined", job_id=job_id, identity=room.local_participant.identity)
    linger_s = float(steer.get("linger_s", 0))

    async def linger(reason: str) -> None:
        report("job_shutdown", job_id=job_id, reason=reason)
        if linger_s > 0:
            await asyncio.sleep(linger_s)  # the agent overstays; the server must remove it
            report("linger_done", job_id=job_id)
        await room.disconnect()

    ctx.add_shutdown_callback(linger)
    if steer.get("leave"):
        await room.disconnect()
        report("side_left", job_id=job_id)


async def entrypoint(ctx: JobContext) -> None:
    report(
        "job_started", job_id=ctx.job.id, dispatch_id=ctx.job.dispatch_id, room=ctx.job.room.name
    )
    steer = _steering(ctx.job.metadata)
    if steer.get("side_room"):
        await _side_room(ctx, steer)
        return
    if os.environ.get(CONNECT_ENV) == "1":
        await ctx.connect()
        report(
            "connected",
            job_id=ctx.job.id,
            room=ctx.room.name,
            identity=ctx.room.local_participant.identity,
        )
    if os.environ.get(ECHO_ENV) == "1":
        await _speak_and_listen(ctx)
    if steer.get("say"):
        await _session_say(ctx, str(steer["say"]))


async def _session_say(ctx: JobContext, text: str) -> None:
    """A real AgentSession says `text` over a tone: livekit-agents publishes the audio, its
    `lk.transcription` text stream and its `lk.agent.state` attribute (no STT/LLM/TTS needed)."""
    from livekit.agents import Agent, AgentSession
    from rtc_client_script import FRAME_SAMPLES, RATE_HZ  # the tests' own audio helpers

    async def voice():
        for index in range(150):  # 1.5 s of 880 Hz
            t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / RATE_HZ
            frame = rtc.AudioFrame.create(RATE_HZ, 1, FRAME_SAMPLES)
            np.copyto(np.frombuffer(frame.data, dtype=np.int16),
                      (0.3 * 32767 * np.sin(2 * np.pi * AGENT_TONE_HZ * t)).astype(np.int16))
            yield frame

    session = AgentSession()
    await session.start(Agent(instructions="say what you are told"), room=ctx.room)
    handle = session.say(text, audio=voice(), allow_interruptions=False)
    await handle
    report("agent_said", text=text)


async def _speak_and_listen(ctx: JobContext) -> None:
    """What a voice agent does with media: publish its voice (a tone) and hear the caller."""
    from rtc_client_script import RATE_HZ, analyse, play_tone  # the tests' own audio helpers

    source = rtc.AudioSource(RATE_HZ, 1)
    track = rtc.LocalAudioTrack.create_audio_track("agent-voice", source)
    publication = await ctx.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    report("agent_published", sid=publication.sid)
    _keep(play_tone(source, AGENT_TONE_HZ, 60.0))

    async def listen(remote: rtc.RemoteAudioTrack, identity: str) -> None:
        chunks = []
        stream = rtc.AudioStream(remote, sample_rate=RATE_HZ, num_channels=1)
        async for event in stream:
            chunks.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())
            if len(chunks) >= 200:  # 2 s of 10 ms frames
                break
        await stream.aclose()
        report("agent_heard", identity=identity, frames=len(chunks), **analyse(chunks))

    def on_subscribed(remote: rtc.Track, _pub: rtc.RemoteTrackPublication,
                      participant: rtc.RemoteParticipant) -> None:
        if isinstance(remote, rtc.RemoteAudioTrack):
            _keep(listen(remote, participant.identity))

    ctx.room.on("track_subscribed", on_subscribed)
    for participant in ctx.room.remote_participants.values():
        for pub in participant.track_publications.values():
            if isinstance(pub.track, rtc.RemoteAudioTrack):
                _keep(listen(pub.track, participant.identity))


def _keep(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def on_request(req: JobRequest) -> None:
    report(
        "job_request",
        job_id=req.job.id,
        dispatch_id=req.job.dispatch_id,
        room=req.job.room.name,
        agent_name=req.job.agent_name,
    )
    delay_s = float(_steering(req.job.metadata).get("answer_delay_s", 0))
    if delay_s > 0:
        await asyncio.sleep(delay_s)  # a slow request handler, under test
    report("answering", job_id=req.job.id)  # accept() itself waits for the assignment
    await req.accept()


def _load() -> float:
    """0 unless --load-file names a file with the load to report (load is under test there).

    0 by default keeps the worker AVAILABLE on a busy CI box: a real server offers no job to a
    worker at load >= 0.7, and the machine's CPU use says nothing about this test."""
    path = os.environ.get(LOAD_FILE_ENV)
    load = float(Path(path).read_text(encoding="utf-8")) if path else 0.0
    if path:
        report("load", load=load)
    return load


async def run(args: argparse.Namespace) -> None:
    server = AgentServer(
        ws_url=args.url,
        api_key=args.api_key,
        api_secret=args.api_secret,
        host="127.0.0.1",
        port=0,
        num_idle_processes=args.idle,
        load_threshold=0.95,
        load_fnc=_load,
        max_retry=3,
    )
    server.rtc_session(entrypoint, agent_name=args.agent_name, on_request=on_request)
    server.on(
        "worker_registered", lambda worker_id, _info: report("registered", worker_id=worker_id)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(server.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await server.aclose()
    stopper.cancel()
    await asyncio.gather(runner, stopper, return_exceptions=True)
    report("stopped")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--agent-name", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--connect", action="store_true")
    p.add_argument("--echo", action="store_true",
                   help="after connecting: publish a tone and hear the caller")
    p.add_argument("--idle", type=int, default=1)
    p.add_argument("--load-file", default="")
    args = p.parse_args()
    if args.load_file:
        os.environ[LOAD_FILE_ENV] = args.load_file
    os.environ[OUT_ENV] = args.out  # inherited by the job processes
    os.environ[CONNECT_ENV] = "1" if args.connect else "0"
    os.environ[ECHO_ENV] = "1" if args.echo else "0"
    logging.basicConfig(level=logging.INFO)
    handler = _WarningsToReport(level=logging.WARNING)
    logging.getLogger("livekit.agents").addHandler(handler)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
