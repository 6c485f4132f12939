"""``[voice]`` providers: which STT and TTS, their keys, and how each is built.

Production providers are livekit-agents plugins that need an API key from the environment
or a systemd credential (never the TOML); the offline ones (pocketsphinx, piper) need
nothing and are what the sandbox uses. A missing key is a :class:`ConfigError` naming it,
so ``voiceops check`` and the worker's start (exit 78) fail the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from livekit.agents import stt, tts, vad

from voiceops import config
from voiceops.agent import offline
from voiceops.config import ConfigError, VoiceConfig


@dataclass(frozen=True)
class Provider:
    name: str
    key_env: str = ""  # "" for the offline ones
    offline: bool = False

    @property
    def credential(self) -> str:
        """The systemd credential file name for the key: DEEPGRAM_API_KEY → deepgram-api-key."""
        return self.key_env.lower().replace("_", "-")


STT_PROVIDERS: Final = {p.name: p for p in (
    Provider("deepgram", "DEEPGRAM_API_KEY"),
    Provider("openai", "OPENAI_API_KEY"),
    Provider("pocketsphinx", offline=True),
)}
OFFLINE_VOICE: Final = VoiceConfig(stt="pocketsphinx", tts="piper")

TTS_PROVIDERS: Final = {p.name: p for p in (
    Provider("cartesia", "CARTESIA_API_KEY"),
    Provider("openai", "OPENAI_API_KEY"),
    Provider("piper", offline=True),
)}


@dataclass(frozen=True)
class VoiceKeys:
    """The provider keys a pipeline needs, by env name; never logged."""

    by_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def get(self, provider: Provider) -> str:
        return self.by_env.get(provider.key_env, "")


def voice_for(cfg: config.Config, env: Mapping[str, str]) -> VoiceConfig:
    """``[voice]``, except in the sandbox, which speaks offline (no keys, no network)."""
    return OFFLINE_VOICE if env.get(config.SANDBOX_ENV) == "1" else cfg.voice


def providers_for(voice: VoiceConfig) -> tuple[Provider, Provider]:
    """The configured (stt, tts) providers; an unknown name is an error naming the key."""
    for key, name, table in (("voice.stt", voice.stt, STT_PROVIDERS),
                             ("voice.tts", voice.tts, TTS_PROVIDERS)):
        if name not in table:
            raise ConfigError(f"{key}: unknown provider {name!r} (known: {', '.join(table)})")
    return STT_PROVIDERS[voice.stt], TTS_PROVIDERS[voice.tts]


def resolve_keys(voice: VoiceConfig, env: Mapping[str, str]) -> VoiceKeys:
    """Each needed key from the environment or ``$CREDENTIALS_DIRECTORY``, or an error naming it."""
    found: dict[str, str] = {}
    for key, provider in zip(("voice.stt", "voice.tts"), providers_for(voice), strict=True):
        if provider.offline or provider.key_env in found:
            continue
        value = config.read_secret(provider.key_env, provider.credential, env)
        if not value:
            raise ConfigError(
                f"{key}: provider {provider.name!r} needs {provider.key_env}: set it in the "
                f"environment or as the {provider.credential!r} systemd credential")
        found[provider.key_env] = value
    return VoiceKeys(found)


@dataclass
class Prewarmed:
    """What the job process loaded before its first call (see :func:`voiceops.agent.prewarm`)."""

    vad: vad.VAD
    piper: offline.PiperEngine | None = None
    sphinx: offline.SphinxEngine | None = None


def prewarm_engines(voice: VoiceConfig) -> Prewarmed:
    """Load the VAD and whichever offline engines ``[voice]`` uses (the slow part of a call)."""
    from livekit.plugins import silero

    stt_p, tts_p = providers_for(voice)
    return Prewarmed(vad=silero.VAD.load(),
                     piper=offline.load_piper() if tts_p.name == "piper" else None,
                     sphinx=offline.load_sphinx() if stt_p.name == "pocketsphinx" else None)


def build_stt(voice: VoiceConfig, keys: VoiceKeys, warm: Prewarmed) -> stt.STT[Any]:
    """The configured STT; a non-streaming one is wrapped with the VAD (``StreamAdapter``)."""
    provider, _ = providers_for(voice)
    engine: stt.STT[Any]
    if provider.name == "deepgram":
        from livekit.plugins import deepgram

        engine = deepgram.STT(api_key=keys.get(provider))
    elif provider.name == "openai":
        from livekit.plugins import openai

        engine = openai.STT(api_key=keys.get(provider))
    else:
        engine = offline.SphinxSTT(warm.sphinx or offline.load_sphinx())
    if engine.capabilities.streaming:
        return engine
    return stt.StreamAdapter(stt=engine, vad=warm.vad)


def build_tts(voice: VoiceConfig, keys: VoiceKeys, warm: Prewarmed) -> tts.TTS[Any]:
    """The configured TTS (a non-streaming one is streamed per sentence by the session)."""
    _, provider = providers_for(voice)
    if provider.name == "cartesia":
        from livekit.plugins import cartesia

        return cartesia.TTS(api_key=keys.get(provider))
    if provider.name == "openai":
        from livekit.plugins import openai

        return openai.TTS(api_key=keys.get(provider))
    return offline.PiperTTS(warm.piper or offline.load_piper())
