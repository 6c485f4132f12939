"""[voice] providers: names, keys from the environment or systemd credentials, never the TOML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceops import config
from voiceops.agent import offline, providers
from voiceops.agent.pipeline import NO_AGENT_REASON, pick_agent_id
from voiceops.config import ConfigError, VoiceConfig


def test_offline_providers_need_no_key() -> None:
    """pocketsphinx and piper resolve with an empty environment."""
    keys = providers.resolve_keys(VoiceConfig(stt="pocketsphinx", tts="piper"), {})
    assert keys.by_env == {}


@pytest.mark.parametrize(("voice", "key"), [
    (VoiceConfig(stt="deepgram", tts="piper"), "DEEPGRAM_API_KEY"),
    (VoiceConfig(stt="pocketsphinx", tts="cartesia"), "CARTESIA_API_KEY"),
    (VoiceConfig(stt="openai", tts="piper"), "OPENAI_API_KEY"),
    (VoiceConfig(stt="pocketsphinx", tts="openai"), "OPENAI_API_KEY"),
])
def test_a_missing_key_is_named(voice: VoiceConfig, key: str) -> None:
    """Each production provider without its key is a ConfigError naming the config key and env
    var."""
    with pytest.raises(ConfigError, match=rf"^voice\.(stt|tts): provider '\w+' needs {key}"):
        providers.resolve_keys(voice, {})


def test_keys_come_from_env_or_credentials(tmp_path: Path) -> None:
    """The environment wins; else $CREDENTIALS_DIRECTORY/<name-with-dashes>; one key serves both."""
    (tmp_path / "cartesia-api-key").write_text("cart-from-file\n", encoding="utf-8")
    env = {"DEEPGRAM_API_KEY": "dg-from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    keys = providers.resolve_keys(VoiceConfig(stt="deepgram", tts="cartesia"), env)
    assert keys.by_env == {"DEEPGRAM_API_KEY": "dg-from-env", "CARTESIA_API_KEY": "cart-from-file"}
    assert "dg-from-env" not in repr(keys)
    both = providers.resolve_keys(VoiceConfig(stt="openai", tts="openai"), {"OPENAI_API_KEY": "k"})
    assert both.by_env == {"OPENAI_API_KEY": "k"}


def test_unknown_provider_is_a_config_error_naming_the_key() -> None:
    """An unknown name in [voice] fails config validation with the choices."""
    with pytest.raises(
        ConfigError, match=r"^voice\.stt: must be one of deepgram, openai, pocketsphinx"
    ):
        config.from_dict({"voice": {"stt": "whisper"}})
    with pytest.raises(ConfigError, match=r"^voice\.tts: must be one of cartesia, openai, piper"):
        config.from_dict({"voice": {"tts": "espeak"}})


def test_provider_tables_match_the_config_choices() -> None:
    """Every name config accepts has a provider entry, and no more."""
    assert tuple(providers.STT_PROVIDERS) == config.VOICE_STT
    assert tuple(providers.TTS_PROVIDERS) == config.VOICE_TTS


def test_production_plugins_are_built_with_the_resolved_key() -> None:
    """deepgram/cartesia plugins are constructed from the resolved keys (no network at build)."""
    voice = VoiceConfig(stt="deepgram", tts="cartesia")
    keys = providers.resolve_keys(voice, {"DEEPGRAM_API_KEY": "dg", "CARTESIA_API_KEY": "ca"})
    warm = providers.Prewarmed(vad=None)  # type: ignore[arg-type]  # streaming STT: no VAD used
    stt = providers.build_stt(voice, keys, warm)
    tts = providers.build_tts(voice, keys, warm)
    assert (stt.provider, tts.provider) == ("Deepgram", "Cartesia")


def test_agent_id_from_metadata_else_default() -> None:
    """The dispatch's letta_agent_id wins; else letta.default_agent_id; neither gives ""."""
    with_default = config.from_dict({"letta": {"default_agent_id": "agent-default"}})
    without = config.from_dict({})
    assert pick_agent_id('{"letta_agent_id": "agent-1"}', with_default) == "agent-1"
    assert pick_agent_id("", with_default) == "agent-default"
    assert pick_agent_id('{"letta_agent_id": 5}', without) == ""
    assert NO_AGENT_REASON == "no_letta_agent_id"


def test_the_sandbox_speaks_offline() -> None:
    """Under `voiceops run --sandbox` (VOICEOPS_SANDBOX=1) [voice] is pocketsphinx + piper: no
    keys."""
    cfg = config.from_dict({"voice": {"stt": "deepgram", "tts": "cartesia"}})
    assert providers.voice_for(cfg, {"VOICEOPS_SANDBOX": "1"}) == VoiceConfig(
        "pocketsphinx", "piper"
    )
    assert providers.voice_for(cfg, {}) == cfg.voice


def test_room_options_publish_transcriptions_and_leave_closing_to_presence() -> None:
    """Audio in and out, both sides' transcriptions to the room (synced to the speech), and the
    session is not closed by livekit when its linked caller leaves (presence decides)."""
    from voiceops.agent.pipeline import TURN_HANDLING, room_options

    opts = room_options()
    text = opts.get_text_output_options()
    assert text is not None and text.sync_transcription is True
    assert opts.get_audio_input_options() is not None and opts.close_on_disconnect is False
    assert TURN_HANDLING["interruption"]["enabled"] is True
    assert TURN_HANDLING["preemptive_generation"] == {"enabled": False}


def test_the_caller_audio_reaches_the_agent_as_its_vad_and_stt_use_it() -> None:
    """The room delivers the caller's audio at pocketsphinx's and silero's 16 kHz, in frames of
    at most 20 ms (livekit's default 50 ms frames delay seeing the end of speech)."""
    from voiceops.agent.pipeline import room_options

    audio_in = room_options().get_audio_input_options()
    assert audio_in is not None
    assert audio_in.sample_rate == offline.SPHINX_SAMPLE_RATE_HZ == 16000
    assert audio_in.frame_size_ms <= 20


def test_piper_leading_silence_is_trimmed_up_to_a_short_lead_in() -> None:
    """What precedes the first audible sample is dropped but for a 5 ms lead-in; audio that
    starts loud, and all-silent audio, pass unchanged."""
    rate = 22050
    lead_in = rate * offline.LEAD_IN_MS // 1000
    speech = (np.sin(np.arange(rate // 10) / 3.0) * 8000).astype(np.int16)
    speech[0] = 3000  # the first sample is already audible
    padded = np.concatenate([np.full(rate // 20, 3, np.int16), speech])  # 50 ms of piper's hiss
    trimmed = np.frombuffer(offline.trim_leading_silence(padded.tobytes(), rate), np.int16)
    assert len(trimmed) == len(speech) + lead_in
    assert np.array_equal(trimmed[lead_in:], speech)
    assert offline.trim_leading_silence(speech.tobytes(), rate) == speech.tobytes()
    quiet = np.zeros(rate // 10, np.int16).tobytes()
    assert offline.trim_leading_silence(quiet, rate) == quiet


def test_piper_tts_starts_speaking_at_once() -> None:
    """The agent's TTS output begins within a few ms of its first loud sample (piper's own
    rendering of the same sentence starts with tens of ms of silence)."""
    import asyncio

    engine = offline.load_piper()
    raw = np.frombuffer(offline.piper_pcm(engine, "The capital of France is Paris."), np.int16)

    async def first_audio() -> np.ndarray:
        tts = offline.PiperTTS(engine)
        async with tts.synthesize("The capital of France is Paris.") as stream:
            chunks = [np.frombuffer(ev.frame.data, np.int16) async for ev in stream]
        return np.concatenate(chunks)

    said = asyncio.run(first_audio())
    ms = 1000 / engine.sample_rate_hz
    assert np.argmax(np.abs(raw) > 330) * ms > 30  # piper's own silence, for the record
    assert np.argmax(np.abs(said) > 330) * ms < 15


def test_stt_audio_is_cut_to_the_words_and_a_margin_of_silence() -> None:
    """The VAD's prefix padding and end-of-turn silence are cut to STT_SILENCE_MARGIN_S on each
    side before pocketsphinx decodes; audio with nothing above the level passes unchanged."""
    rate = offline.SPHINX_SAMPLE_RATE_HZ
    words = (np.sin(np.arange(rate) / 2.0) * 6000).astype(np.int16)  # 1 s of "speech"
    padded = np.concatenate([np.zeros(rate // 2, np.int16), words, np.zeros(rate * 55 // 100,
                                                                            np.int16)])
    cut = np.frombuffer(offline.trim_silence(padded.tobytes(), rate), np.int16)
    margin = int(offline.STT_SILENCE_MARGIN_S * rate)
    assert len(cut) == len(words) + 2 * margin
    assert np.array_equal(cut[margin:-margin], words)
    hiss = np.full(rate, 20, np.int16).tobytes()
    assert offline.trim_silence(hiss, rate) == hiss


def test_pocketsphinx_hears_the_question_inside_vad_padding() -> None:
    """Offline STT on what the VAD hands it (0.5 s before, 0.55 s of silence after the words)
    gives the words: the silence cut does not eat into them."""
    import asyncio

    from livekit import rtc

    piper, sphinx = offline.load_piper(), offline.load_sphinx()
    said = np.frombuffer(offline.piper_pcm(piper, "What is the capital of France?"), np.int16)
    rate = piper.sample_rate_hz
    audio = np.concatenate([np.zeros(rate // 2, np.int16), said,
                            np.zeros(rate * 55 // 100, np.int16)])
    frame = rtc.AudioFrame(audio.tobytes(), rate, 1, len(audio))
    event = asyncio.run(offline.SphinxSTT(sphinx).recognize([frame]))
    assert event.alternatives[0].text == "what is the capital of france"
