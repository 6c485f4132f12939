"""Voice response time: the whole pipeline vs the sum of its parts measured alone, same run.

**pipeline**: ``voiceops run --sandbox`` (the emulator, the Letta stand-in, one voice worker on
pocketsphinx + piper) and a caller on the rtc SDK (voiceops.testing.caller) in a call; per
turn, the caller's end of speech → the first loud frame of the agent's answer at the caller.

**parts** (the baseline), each alone in this process on the same audio and text: silero's
end-of-speech delay (audio time from the end of the words to END_OF_SPEECH), pocketsphinx on
the utterance, the Letta brain's first token from the same stand-in (LettaLLM), and piper's
first audio for the answer's first sentence. One run of the parts follows each turn, while
the call is quiet, so the machine's background load hits both alike. Target: pipeline p50
<= 1.3x the parts' p50 sum, i.e. the pipeline (transport both ways, endpointing, sentence
streaming, scheduling) adds under 30 %.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import llm, stt, vad

from voiceops import config
from voiceops.agent import offline, providers
from voiceops.agent.letta_llm import LettaBrainOptions, LettaLLM
from voiceops.letta_standin.brain import CAPITAL_ANSWER
from voiceops.testing.caller import Caller, render_speech
from voiceops.testing.harness import Supervisor, free_port, wait_for, write_toml

from .procs import BenchError
from .report import Check, Section, percentile

QUESTION = "What is the capital of France?"
MAX_RATIO = 1.3
TURN_S = 45.0


@dataclass(frozen=True)
class VoiceSizes:
    turns: int


QUICK = VoiceSizes(turns=2)
FULL = VoiceSizes(turns=8)


def sandbox_config(tmp: Path) -> tuple[Path, dict[str, dict[str, object]]]:
    sections: dict[str, dict[str, object]] = {
        "livekit": {"url": f"ws://127.0.0.1:{free_port()}"},
        "agent": {"name": "bench-voice"},
        # load counts jobs: on this shared machine the CPU is often above LiveKit's 0.7
        "workers": {"count": 1, "num_idle_processes": 1, "load_threshold": 1.0, "max_jobs": 20,
                    "drain_timeout_s": 10},
        "proxy": {"listen": f"127.0.0.1:{free_port()}"},
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "control": {"socket": str(tmp / "run" / "control.sock")},
        "heartbeat": {"enabled": False},
        "letta": {"base_url": f"http://127.0.0.1:{free_port()}"},
    }
    return write_toml(tmp / "voiceops.toml", sections), sections


async def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        data: dict[str, object] = await resp.json()
        if resp.status != 200:
            raise BenchError(f"{url} answered {resp.status}: {data}")
        return data


PartsRun = Callable[[], Awaitable[tuple[float, float, float, float]]]


async def interleaved_turns(proxy: str, question: Path, turns: int, parts: PartsRun
                            ) -> tuple[list[float], list[tuple[float, float, float, float]]]:
    """Per turn: the caller's end of speech → the agent's first audio, then one run of the
    parts alone while the call is quiet, so background load on this shared machine hits both.
    """
    grant = await _post(proxy + "/api/token", {"room": "bench-voice", "identity": "caller"})
    caller = await Caller.start()
    try:
        await caller.call("connect", str(grant["url"]), str(grant["token"]), expect="connected",
                          timeout_s=TURN_S)
        await _post(proxy + "/api/dispatch-agent", {"room": "bench-voice"})
        await caller.expect("agent_track", timeout_s=TURN_S)
        await caller.call("wait_quiet", "1.0", str(TURN_S), expect="agent_quiet",
                          timeout_s=TURN_S + 5)  # past the greeting
        whole, alone = [], []
        for _ in range(turns):
            spoke = await caller.call("speak", str(question), expect="spoke", timeout_s=30)
            heard = await caller.call("wait_speech", str(TURN_S), expect="agent_speech",
                                      timeout_s=TURN_S + 5)
            whole.append(heard["ts"] - spoke["speech_end_ts"])
            await caller.call("wait_quiet", "1.0", str(TURN_S), expect="agent_quiet",
                              timeout_s=TURN_S + 5)
            alone.append(await parts())
        return whole, alone
    finally:
        await caller.close()


def _frames(pcm: np.ndarray, rate: int) -> list[rtc.AudioFrame]:
    step = rate // 100
    return [rtc.AudioFrame(pcm[i:i + step].tobytes(), rate, 1, step)
            for i in range(0, len(pcm) - step + 1, step)]


async def vad_delay_s(detector: vad.VAD, speech: np.ndarray, rate: int) -> float:
    """Audio time from the end of the words to silero's END_OF_SPEECH."""
    lead = np.zeros(rate // 2, dtype=np.int16)
    audio = np.concatenate([lead, speech, np.zeros(2 * rate, dtype=np.int16)])
    loud = np.nonzero(np.abs(speech) > 500)[0]
    speech_end_s = (len(lead) + loud[-1]) / rate
    stream = detector.stream()
    for frame in _frames(audio, rate):
        stream.push_frame(frame)
    stream.end_input()
    try:
        async for ev in stream:
            if ev.type is vad.VADEventType.END_OF_SPEECH:
                return ev.timestamp - speech_end_s
    finally:
        await stream.aclose()
    raise BenchError("silero found no end of speech")


async def stt_s(recognizer: stt.STT, speech: np.ndarray, rate: int) -> float:
    started = time.perf_counter()
    await recognizer.recognize(_frames(speech, rate))
    return time.perf_counter() - started


async def letta_ttft_s(brain: LettaLLM) -> float:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content=QUESTION.lower())
    started = time.perf_counter()
    async with brain.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta is not None and chunk.delta.content:
                first = time.perf_counter() - started
                async for _ in stream:  # finish the turn, as the session would
                    pass
                return first
    raise BenchError("the Letta brain gave no token")


async def tts_ttfb_s(engine: offline.PiperEngine) -> float:
    tts = offline.PiperTTS(engine)
    started = time.perf_counter()
    async with tts.synthesize(CAPITAL_ANSWER) as stream:
        async for _ in stream:
            return time.perf_counter() - started
    raise BenchError("piper gave no audio")


def parts_runner(letta_url: str, speech_22k: np.ndarray, rate: int) -> PartsRun:
    """One run of the parts alone: (VAD end-of-speech delay, STT, Letta first token, TTS first
    byte), the same silero settings and engines the job process prewarms."""
    warm = providers.prewarm_engines(providers.OFFLINE_VOICE)
    assert warm.sphinx is not None and warm.piper is not None
    recognizer = offline.SphinxSTT(warm.sphinx)
    brain = LettaLLM(LettaBrainOptions(base_url=letta_url), config.SANDBOX_LETTA_AGENT_ID)
    piper = warm.piper

    async def once() -> tuple[float, float, float, float]:
        return (await vad_delay_s(warm.vad, speech_22k, rate),
                await stt_s(recognizer, speech_22k, rate),
                await letta_ttft_s(brain), await tts_ttfb_s(piper))
    return once


async def _measure(tmp: Path, sizes: VoiceSizes, sections: dict[str, dict[str, object]]
                   ) -> tuple[list[float], list[tuple[float, float, float, float]]]:
    engine = offline.load_piper()
    question = render_speech(engine, QUESTION, tmp / "question.pcm")
    speech = np.frombuffer(offline.piper_pcm(engine, QUESTION), dtype=np.int16)
    proxy = "http://" + str(sections["proxy"]["listen"])
    parts = parts_runner(str(sections["letta"]["base_url"]), speech, engine.sample_rate_hz)
    await parts()  # warm-up: the first Letta turn opens a conversation, the engines warm up
    return await interleaved_turns(proxy, question, sizes.turns, parts)


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: VoiceSizes) -> Section:
    with tempfile.TemporaryDirectory(prefix="vo-bench-voice-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, sections = sandbox_config(tmp)
        metrics_port = int(str(sections["metrics"]["listen"]).rsplit(":", 1)[1])
        sup = Supervisor(tmp, cfg, metrics_port, env={"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "10"},
                         extra_args=("--sandbox",))
        try:
            wait_for(lambda: (st := sup.status()) and st.get("ready"), 120,
                     "the sandbox to report ready")
            whole, parts = asyncio.run(_measure(tmp, sizes, sections))
            agent_side = _agent_side(sup)
        finally:
            sup.close()
    return _section(whole, parts, agent_side)


def _agent_side(sup: Supervisor) -> str:
    """Means of the voice histograms the supervisor exported for this run (where time went)."""
    out = []
    for name in ("voice_response", "stt_delay", "llm_ttft", "tts_ttfb"):
        total = sup.metric(f"voiceops_{name}_seconds_sum") or 0.0
        count = sup.metric(f"voiceops_{name}_seconds_count") or 0.0
        out.append(f"{name} {total / count:.2f} s" if count else f"{name} -")
    return "agent side (means on /metrics): " + ", ".join(out)


PART_NAMES = ("VAD end of speech", "STT", "Letta first token", "TTS first byte")


def _section(whole: list[float], parts: list[tuple[float, float, float, float]],
             agent_side: str) -> Section:
    sums = [sum(run) for run in parts]
    p50, p95 = percentile(whole, 50), percentile(whole, 95)
    base = percentile(sums, 50)
    each = ", ".join(f"{name} {percentile([run[i] for run in parts], 50):.2f}"
                     for i, name in enumerate(PART_NAMES))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return Section("voice response", checks=(
        Check("end of speech -> first agent audio, p50", p50, base, "s", MAX_RATIO,
              note=f"{len(whole)} turns through the sandbox, each followed by the parts alone"),
    ), info=((f"pipeline p50 {p50:.2f} s, p95 {p95:.2f} s; parts alone p50 {base:.2f} s, "
              f"p95 {percentile(sums, 95):.2f} s; load {load}"),
             f"parts p50: {each}",
             agent_side))
