"""JobRequest answer latency of the real voiceops worker, with an idle and with a busy loop.

LiveKit gives a worker psrpc's ~3 s to answer a JobRequest; a later answer loses the job for
good. Two ``bench.handler_worker`` processes (the real WorkerRuntime, RequestHandler and
livekit-agents AgentServer) register with the emulator: one with an idle event loop (the
baseline), one whose loop a task blocks for 100 ms out of every 110 ms. Heartbeat-style probe
dispatches ("request" mode: reported, then declined, so no job process starts) go to each
alternately, one at a time; the emulator times each AvailabilityRequest to its answer.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import psutil
from livekit import api

from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer
from voiceops.testing.waiting import wait_for_async
from voiceops.worker.probe import probe_metadata

from .procs import BenchError, assert_gone
from .report import Check, Section, percentile

DEADLINE_S = 3.0  # psrpc's DefaultClientTimeout on the Go server
HOG_MS, GAP_MS = 100, 10
ANSWER_TIMEOUT_S = 10.0
POLL_S = 0.02  # how often a wait asks the emulator for its workers
LEGS = {"idle": 0, "busy": HOG_MS}


@dataclass(frozen=True)
class HandlerSizes:
    probes: int  # per leg
    warmup: int


QUICK = HandlerSizes(probes=15, warmup=2)
FULL = HandlerSizes(probes=60, warmup=5)


def _start_worker(server: LiveKitServer, leg: str, hog_ms: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bench.handler_worker", "--url", server.url,
           "--api-key", server.api_key, "--api-secret", server.api_secret,
           "--agent-name", f"bench-{leg}", "--hog-ms", str(hog_ms), "--gap-ms", str(GAP_MS)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _worker(server: LiveKitServer, leg: str) -> dict[str, Any] | None:
    found = [w for w in server.state()["workers"] if w["agent_name"] == f"bench-{leg}"]
    return found[0] if found else None


async def _probe(lk: api.LiveKitAPI, server: LiveKitServer, leg: str) -> float | None:
    """One probe dispatch; the emulator's AvailabilityRequest→answer time, None if lost."""
    before = await asyncio.to_thread(_worker, server, leg)
    assert before is not None
    await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
        agent_name=f"bench-{leg}", room=f"bench-{uuid.uuid4().hex[:10]}",
        metadata=probe_metadata("request")))

    def answered() -> dict[str, Any] | None:
        w = _worker(server, leg)
        return w if w and w["answered"] > before["answered"] else None

    try:
        after = await wait_for_async(lambda: asyncio.to_thread(answered), DEADLINE_S + 1,
                                     f"the {leg} worker's answer", POLL_S, error=BenchError)
    except BenchError:
        return None  # past the deadline the emulator drops the answer, as LiveKit does
    return float(after["last_answer_s"])


async def _measure(server: LiveKitServer, sizes: HandlerSizes) -> dict[str, list[float | None]]:
    for leg in LEGS:
        await wait_for_async(lambda leg=leg: asyncio.to_thread(_worker, server, leg), 60,
                             f"the {leg} worker to register", POLL_S, error=BenchError)
    samples: dict[str, list[float | None]] = {leg: [] for leg in LEGS}
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        for i in range(sizes.warmup + sizes.probes):
            for leg in (LEGS if i % 2 == 0 else reversed(list(LEGS))):
                answer_s = await _probe(lk, server, leg)
                if i >= sizes.warmup:
                    samples[leg].append(answer_s)
    return samples


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: HandlerSizes) -> Section:
    emulator = EmulatorProcess()
    server = emulator.start()
    procs = [_start_worker(server, leg, hog_ms) for leg, hog_ms in LEGS.items()]
    trees = [psutil.Process(p.pid) for p in procs]
    try:
        samples = asyncio.run(_measure(server, sizes))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        emulator.stop()
        assert_gone(trees)
    return _section(samples, sizes)


def _section(samples: dict[str, list[float | None]], sizes: HandlerSizes) -> Section:
    answered = {leg: [s for s in got if s is not None] for leg, got in samples.items()}
    lost = {leg: len(got) - len(answered[leg]) for leg, got in samples.items()}
    if not answered["idle"] or not answered["busy"]:
        raise BenchError(f"no answers measured (lost: {lost})")
    idle95, busy95 = percentile(answered["idle"], 95), percentile(answered["busy"], 95)
    busy_max = max(answered["busy"])
    checks = (
        # A 100 ms slice can stand before each loop hop of the answer path (socket read,
        # the request task, the load read, our handler, the send): about 5 slices at worst.
        Check(f"p95 answer, loop {HOG_MS}/{HOG_MS + GAP_MS} ms busy vs idle loop p95",
              busy95, idle95, "s", max_ratio=1.0, slack=5 * HOG_MS / 1000),
        # The deadline is the protocol's, not this machine's: the worst busy answer must leave
        # most of it unused (a third), so a slower machine still answers in time.
        Check(f"worst busy-loop answer vs LiveKit's {DEADLINE_S:.0f} s deadline / 3",
              busy_max, DEADLINE_S / 3, "s", max_ratio=1.0),
        Check("JobRequests lost (answered after the deadline), busy loop", float(lost["busy"]),
              1.0, "jobs", max_ratio=0.0),
    )
    info = (f"{sizes.probes} probe dispatches per leg after {sizes.warmup} warm-up, alternating",
            "answer p50/p95/max ms: " + ", ".join(
                f"{leg} {percentile(a, 50) * 1e3:.0f}/{percentile(a, 95) * 1e3:.0f}/"
                f"{max(a) * 1e3:.0f}" for leg, a in answered.items()),
            f"lost past the {DEADLINE_S:.0f} s deadline: idle {lost['idle']}, busy {lost['busy']}")
    return Section("JobRequest answer latency (voiceops worker, idle vs busy loop)", checks, info)
