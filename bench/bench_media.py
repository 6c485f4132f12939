"""Media forwarding: audio through the emulator vs straight from the publisher, and how many
concurrent two-party calls the emulator carries on this machine before frames are lost.

Both legs use the same aiortc endpoints (bench/media_client.py): a publisher sending a 1 kHz
burst every 500 ms in 20 ms Opus frames, paced in real time, and a receiver counting decoded
samples and burst onsets. **direct**: publisher PC → receiver PC, no server (the baseline);
**forwarded**: publisher → emulator `/rtc` → subscriber, as a LiveKit call. The legs alternate,
round by round. Latency is a burst's onset at the receiver minus when the publisher sent it
(same process, same clock). Frames lost: of the 20 ms frames the publisher sent between the
first and the last that arrived in a window (by their RTP clock), those that did not arrive.

Capacity: N calls at once, each both ways (each side publishes and hears the other), clients
in two load processes; N steps up until a step loses more than 1 % of frames or delivers
less than 95 % of real time (a backlog: the machine, the emulator or the clients cannot keep
up), or the largest step passes. The machine is shared: the load average is printed with the
result, and the emulator's own CPU per step shows its share.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer

from .media_client import FRAME_S, Call, Link, direct_link, latencies_s
from .procs import BenchError, assert_gone
from .report import Check, Section

REPO = Path(__file__).resolve().parents[1]
SETTLE_S = 1.0  # jitter buffers fill before a window opens
LOSS_LIMIT = 0.01
REALTIME_MIN = 0.95  # of the frames real-time delivery brings in a window (edges cost ~1 %)
LOAD_PROCESSES = 2


@dataclass(frozen=True)
class MediaSizes:
    rounds: int
    window_s: float
    call_steps: tuple[int, ...]
    capacity_window_s: float
    required_calls: int  # the target: calls carried at once on this shared 2-core machine


QUICK = MediaSizes(rounds=1, window_s=2.0, call_steps=(1, 2), capacity_window_s=2.0,
                   required_calls=2)
FULL = MediaSizes(rounds=3, window_s=5.0, call_steps=(1, 2, 4, 6, 8, 12, 16),
                  capacity_window_s=4.0, required_calls=8)


@dataclass
class LegResult:
    expected: float = 0.0
    received: float = 0.0
    latencies_s: list[float] | None = None

    def add(self, expected: float, received: float, latencies: list[float]) -> None:
        self.expected += expected
        self.received += received
        self.latencies_s = (self.latencies_s or []) + latencies

    @property
    def lost_pct(self) -> float:
        return lost_fraction(self.expected, self.received) * 100

    @property
    def p50_ms(self) -> float:
        if not self.latencies_s:
            raise BenchError("no burst was heard: no latency to report")
        return statistics.median(self.latencies_s) * 1000


def lost_fraction(expected: float, received: float) -> float:
    """Share of expected frames that did not arrive (window edges can add one: never < 0)."""
    return 0.0 if expected <= 0 else max(0.0, 1.0 - received / expected)


async def _window(link: Link, window_s: float) -> tuple[float, float, list[float]]:
    await asyncio.sleep(SETTLE_S)
    t0 = time.monotonic()
    await asyncio.sleep(window_s)
    t1 = time.monotonic()
    received = link.heard.frames_between(t0, t1)
    expected = link.heard.expected_between(t0, t1) or (t1 - t0) / FRAME_S
    sent = [t for t in link.tone.onsets_s if t0 - 1.0 <= t < t1]
    heard = [t for t in link.heard.onsets_s if t0 <= t < t1]
    return expected, received, latencies_s(sent, heard)


async def _forwarded_link(http: aiohttp.ClientSession, server: LiveKitServer) -> Link:
    call = await Call.start(http, server.url, server.api_key, server.api_secret, both_ways=False)
    return Link(call.tones[0], call.b.heard, [call.close])  # type: ignore[arg-type]


async def _legs(server: LiveKitServer, sizes: MediaSizes) -> tuple[LegResult, LegResult]:
    direct, forwarded = LegResult(), LegResult()
    async with aiohttp.ClientSession() as http:
        makers: list[tuple[LegResult, Callable[[], Awaitable[Link]]]] = [
            (direct, direct_link), (forwarded, lambda: _forwarded_link(http, server))]
        for index in range(sizes.rounds):
            for result, make in makers[index % 2:] + makers[:index % 2]:
                link = await make()
                try:
                    result.add(*await _window(link, sizes.window_s))
                finally:
                    await link.close()
    return direct, forwarded


@dataclass(frozen=True)
class Step:
    calls: int
    lost_pct: float
    emulator_cpu_pct: float
    realtime_pct: float = 100.0  # frames delivered vs what real time brings: below, a backlog

    @property
    def carried(self) -> bool:
        return self.lost_pct <= LOSS_LIMIT * 100 and self.realtime_pct >= REALTIME_MIN * 100


def _load_step(server: LiveKitServer, calls: int, window_s: float) -> Step:
    """`calls` calls spread over the load processes; bounded by a timeout, then killed."""
    split = [calls // LOAD_PROCESSES + (1 if i < calls % LOAD_PROCESSES else 0)
             for i in range(LOAD_PROCESSES)]
    emulator = psutil.Process(server.pid)
    cpu0, t0 = sum(emulator.cpu_times()[:2]), time.monotonic()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.media_client", server.url, server.api_key,
         server.api_secret, str(n), str(window_s)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"}, start_new_session=True,
    ) for n in split if n]
    try:
        outs = [json.loads(p.communicate(timeout=60 + 10 * calls)[0]) for p in procs]
    except (subprocess.TimeoutExpired, ValueError) as exc:
        raise BenchError(f"load process at {calls} calls failed: {exc}") from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        assert_gone([psutil.Process(p.pid) for p in procs if p.poll() is None])
    cpu_pct = 100 * (sum(emulator.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
    expected = sum(o["expected"] for o in outs)
    received = sum(o["received"] for o in outs)
    realtime = sum(o["realtime"] for o in outs)
    return Step(calls, lost_fraction(expected, received) * 100, cpu_pct,
                100 * received / realtime if realtime else 0.0)


def _capacity(server: LiveKitServer, sizes: MediaSizes) -> list[Step]:
    steps: list[Step] = []
    for calls in sizes.call_steps:
        steps.append(_load_step(server, calls, sizes.capacity_window_s))
        if not steps[-1].carried:
            break
    return steps


def carried(steps: list[Step]) -> int:
    """The most calls of a step carried (no loss, real time), before the first that was not."""
    best = 0
    for step in steps:
        if not step.carried:
            break
        best = step.calls
    return best


def run(quick: bool) -> Section:
    sizes = QUICK if quick else FULL
    load_before = os.getloadavg()[0]
    emulator = EmulatorProcess()
    server = emulator.start()
    try:
        direct, forwarded = asyncio.run(_legs(server, sizes))
        steps = _capacity(server, sizes)
    finally:
        emulator.stop()
    most = carried(steps)
    checks = (
        Check("one-way latency p50, forwarded vs direct", forwarded.p50_ms, direct.p50_ms, "ms",
              max_ratio=1.5, slack=20.0,
              note="one SFU hop: each packet forwarded as it arrives"),
        Check("frames lost, forwarded vs direct", forwarded.lost_pct, direct.lost_pct, "%",
              max_ratio=1.0, slack=1.0),
        Check("two-party calls needed vs carried in real time without loss", sizes.required_calls,
              max(most, 1e-9),
              "calls", max_ratio=1.0, note=f"largest step tried: {sizes.call_steps[-1]}"),
    )
    info = [f"load average at start {load_before:.1f} on {os.cpu_count()} cores (a shared machine)"]
    info += [f"{s.calls} calls both ways: {s.lost_pct:.1f} % frames lost, "
             f"{s.realtime_pct:.0f} % of real time delivered, emulator CPU "
             f"{s.emulator_cpu_pct:.0f} % of a core" for s in steps]
    return Section("media forwarding", checks=checks, info=tuple(info))
