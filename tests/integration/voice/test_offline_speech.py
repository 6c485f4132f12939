"""Offline speech through voiceops' own adapters: piper speaks, silero + pocketsphinx listen."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from voiceops.agent import providers
from voiceops.config import VoiceConfig

OFFLINE = VoiceConfig(stt="pocketsphinx", tts="piper")
QUESTION = "what is the capital of france"


@pytest.fixture(scope="module")
def warm() -> Iterator[providers.Prewarmed]:
    """The VAD and both engines, loaded once as a job process's prewarm loads them."""
    return providers.prewarm_engines(OFFLINE)


def silence(sample_rate_hz: int, seconds: float) -> rtc.AudioFrame:
    n = int(sample_rate_hz * seconds)
    return rtc.AudioFrame(bytes(2 * n), sample_rate_hz, 1, n)


def rms(frames: list[rtc.AudioFrame]) -> float:
    samples = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def in_20ms_frames(frames: list[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    """Re-chunk into 20 ms frames, the way audio arrives from a room."""
    frame = rtc.combine_audio_frames(frames)
    step = frame.sample_rate // 50
    data = np.frombuffer(frame.data, dtype=np.int16)
    return [rtc.AudioFrame(data[i:i + step].tobytes(), frame.sample_rate, 1, len(data[i:i + step]))
            for i in range(0, len(data) - step + 1, step)]


async def speak(warm: providers.Prewarmed, text: str) -> list[rtc.AudioFrame]:
    tts = providers.build_tts(OFFLINE, providers.VoiceKeys(), warm)
    return [ev.frame async for ev in tts.synthesize(text)]


async def test_piper_speech_is_transcribed_by_silero_and_pocketsphinx(
        warm: providers.Prewarmed) -> None:
    """A spoken question, padded with silence, comes back as its words from the streaming STT."""
    spoken = await speak(warm, "What is the capital of France?")
    assert rms(spoken) > 500, "piper produced audible speech"
    rate = spoken[0].sample_rate
    recognizer = providers.build_stt(OFFLINE, providers.VoiceKeys(), warm)
    assert isinstance(recognizer, stt.StreamAdapter)  # VAD-segmented, non-streaming engine
    stream = recognizer.stream()
    for frame in in_20ms_frames([silence(rate, 0.5), *spoken, silence(rate, 1.5)]):
        stream.push_frame(frame)
    stream.end_input()
    finals = [ev.alternatives[0].text async for ev in stream
              if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT]
    await stream.aclose()
    assert " ".join(finals).lower() == QUESTION


async def test_silence_gives_no_transcript(warm: providers.Prewarmed) -> None:
    """Only silence: the VAD finds no speech, so the STT reports nothing."""
    recognizer = providers.build_stt(OFFLINE, providers.VoiceKeys(), warm)
    stream = recognizer.stream()
    for frame in in_20ms_frames([silence(22050, 2.0)]):
        stream.push_frame(frame)
    stream.end_input()
    finals = [ev async for ev in stream if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT]
    await stream.aclose()
    assert finals == []


async def test_piper_says_the_same_text_the_same_way(warm: providers.Prewarmed) -> None:
    """Two renderings of one sentence are the same audio (no random generator noise), so what
    the agent and the test callers say is reproducible."""
    first = rtc.combine_audio_frames(await speak(warm, QUESTION))
    second = rtc.combine_audio_frames(await speak(warm, QUESTION))
    assert rms([first]) > 500 and bytes(first.data) == bytes(second.data)
