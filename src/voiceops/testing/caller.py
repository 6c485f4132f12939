"""A caller for call tests and the voice benchmark: :mod:`caller_script` in a child process.

Also the test side's speech tools: piper renders what the caller says, pocketsphinx
transcribes what the caller heard (offline, the packaged models).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from livekit import rtc

from voiceops.agent import offline

CALLER_RATE_HZ = 48000


class Caller:
    """Send commands to the child and wait for its JSON events, each wait bounded."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls) -> Caller:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voiceops.testing.caller_script",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
        return cls(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def send(self, *words: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((" ".join(words) + "\n").encode())
        await self._proc.stdin.drain()

    async def expect(self, *names: str, timeout_s: float) -> dict[str, Any]:
        """The first event (already seen or new) named in ``names``; a timeout event fails."""
        for seen in self.events:
            if seen["event"] in names:
                self.events.remove(seen)
                return seen
        assert self._proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise EOFError(f"caller exited with {await self._proc.wait()}")
                event: dict[str, Any] = json.loads(line)
                if event["event"] == "timeout":
                    raise AssertionError(f"caller: {event['command']} timed out")
                if event["event"] in names:
                    return event
                self.events.append(event)

    async def call(self, *words: str, expect: str, timeout_s: float) -> dict[str, Any]:
        await self.send(*words)
        return await self.expect(expect, "failed", timeout_s=timeout_s)

    async def close(self) -> None:
        """EOF lets the child disconnect and exit; it is killed if it does not."""
        assert self._proc.stdin is not None
        if self._proc.returncode is None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await asyncio.wait_for(self._proc.wait(), 10)


def resample(pcm: bytes, from_hz: int, to_hz: int) -> bytes:
    """int16 mono PCM from one rate to another (livekit's resampler)."""
    if from_hz == to_hz or not pcm:
        return pcm
    resampler = rtc.AudioResampler(from_hz, to_hz, num_channels=1,
                                   quality=rtc.AudioResamplerQuality.HIGH)
    frame = rtc.AudioFrame(pcm, from_hz, 1, len(pcm) // 2)
    return b"".join(bytes(f.data) for f in [*resampler.push(frame), *resampler.flush()])


def render_speech(engine: offline.PiperEngine, text: str, path: Path) -> Path:
    """Piper says ``text``; written as the caller's input (int16 mono 48 kHz)."""
    pcm = offline.piper_pcm(engine, text)
    path.write_bytes(resample(pcm, engine.sample_rate_hz, CALLER_RATE_HZ))
    return path


def transcribe(engine: offline.SphinxEngine, path: Path) -> str:
    """pocketsphinx's transcript of what the caller recorded (int16 mono 48 kHz)."""
    pcm16k = resample(path.read_bytes(), CALLER_RATE_HZ, offline.SPHINX_SAMPLE_RATE_HZ)
    return offline.sphinx_text(engine, pcm16k)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def closest_reply(path: Path, candidates: list[str]) -> str:
    """Which of ``candidates`` the recording says, by pocketsphinx with a grammar of them.

    A free transcript of audio that crossed two Opus codecs and a jitter buffer is too noisy
    to compare word for word ("the capital of France" came back as "the cap pope francis");
    choosing among the replies the agent could have given is robust and still fails when
    the agent said something else (say, an echo of the question among the candidates).
    """
    from pocketsphinx import Decoder

    by_words = {_words(c): c for c in candidates}
    grammar = ("#JSGF V1.0;\ngrammar replies;\npublic <reply> = ( "
               + " | ".join(by_words) + " ) ;\n")
    decoder = Decoder(samprate=offline.SPHINX_SAMPLE_RATE_HZ, logfn="/dev/null")
    decoder.add_jsgf_string("replies", grammar)
    decoder.activate_search("replies")
    decoder.start_utt()
    decoder.process_raw(resample(path.read_bytes(), CALLER_RATE_HZ, offline.SPHINX_SAMPLE_RATE_HZ),
                        full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return by_words.get(hyp.hypstr, "") if hyp is not None else ""
