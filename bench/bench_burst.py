"""Bursts: 20 concurrent dispatches to a voiceops stack (supervisor, 2 real workers) until each
agent is ACTIVE in its room, against the same 20 joins made by bare ``livekit`` rtc SDK clients
(agent-kind tokens, concurrently) against the same emulator in the same run.

Both legs are timed the same way: from the start of the leg's action (``CreateDispatch`` for
voiceops, ``Room.connect`` for the SDK) to the first ``GET /emulator/state`` that lists an
agent-kind participant ACTIVE in that room (polled every 20 ms). The server's own join cost is
thus in both; what is left is voiceops' share (JobRequest, answer, assignment, a job process,
its connect). Legs alternate, baseline first, and each round starts from an idle stack (every
agent gone, each worker's job-process pool back at ``workers.num_idle_processes``).
The per-worker job spread of each voiceops round comes from the emulator's job states.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from livekit import api, rtc

from voiceops.emulator.options import DEV_API_SECRET
from voiceops.testing.harness import Supervisor, wait_for, write_toml
from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer
from voiceops.testing.procs import free_port

from .procs import AGENT, BenchError
from .report import Check, Section, percentile

POLL_S = 0.02
JOIN_TIMEOUT_S = 60.0
WORKERS = 2
IDLE_PROCESSES = 2
P95_MAX_RATIO = 1.2


@dataclass(frozen=True)
class Joins:
    active_s: list[float]
    signalled_s: list[float]


@dataclass(frozen=True)
class BurstSizes:
    joins: int  # concurrent dispatches (and SDK joins) per round
    rounds: int  # per leg


QUICK = BurstSizes(joins=20, rounds=1)
FULL = BurstSizes(joins=20, rounds=3)


def config(path: Path, lk: LiveKitServer, metrics_port: int) -> Path:
    return write_toml(path, {
        "livekit": {"url": lk.url, "api_key": lk.api_key},
        "agent": {"name": AGENT},
        # load counts jobs (as the test stacks do): this box's CPU would otherwise stop offers
        "workers": {"count": WORKERS, "standby": 0, "num_idle_processes": IDLE_PROCESSES,
                    "load_threshold": 1.0, "max_jobs": 20, "start_timeout_s": 90,
                    "entrypoint": "voiceops.agent.basic:entrypoint"},
        "proxy": {"enabled": False},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "heartbeat": {"enabled": False},
        "letta": {"base_url": "http://127.0.0.1:9"},
    })


async def _state(session: aiohttp.ClientSession, lk: LiveKitServer) -> dict[str, Any]:
    async with session.get(lk.http_url + "/emulator/state") as resp:
        return dict(await resp.json())


def _active_agents(state: dict[str, Any], states: tuple[str, ...] = ("ACTIVE",)) -> set[str]:
    return {r["name"] for r in state["rooms"] for p in r["participants"]
            if p["state"] in states and p["kind"] == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT}


SIGNALLED = ("JOINING", "JOINED", "ACTIVE")


async def _watch(session: aiohttp.ClientSession, lk: LiveKitServer,
                 started: dict[str, float]) -> Joins:
    """Per room, seconds from its start to the first poll showing its agent ACTIVE, and to its
    signal join (any state: the part before the server's WebRTC set-up)."""
    joined: dict[str, float] = {}
    signalled: dict[str, float] = {}
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while len(joined) < len(started):
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(joined)}/{len(started)} agents ACTIVE in "
                             f"{JOIN_TIMEOUT_S:g} s")
        state = await _state(session, lk)
        now_active = _active_agents(state)
        now = time.monotonic()
        for room in _active_agents(state, SIGNALLED) & started.keys() - signalled.keys():
            signalled[room] = now - started[room]
        for room in now_active & started.keys() - joined.keys():
            joined[room] = now - started[room]
        await asyncio.sleep(POLL_S)
    return Joins(list(joined.values()), list(signalled.values()))


async def sdk_round(session: aiohttp.ClientSession, lk: LiveKitServer, n: int) -> Joins:
    """n bare SDK clients join n new rooms with agent-kind tokens, concurrently."""
    prefix = f"burst-sdk-{uuid.uuid4().hex[:6]}"
    rooms = [rtc.Room() for _ in range(n)]
    started: dict[str, float] = {}

    async def join(i: int) -> None:
        name = f"{prefix}-{i}"
        token = (api.AccessToken(lk.api_key, lk.api_secret).with_identity(f"agent-{i}")
                 .with_kind("agent")
                 .with_grants(api.VideoGrants(room_join=True, room=name, agent=True)).to_jwt())
        started[name] = time.monotonic()
        await rooms[i].connect(lk.url, token, rtc.RoomOptions(auto_subscribe=False))

    try:
        watcher = asyncio.ensure_future(_watch_later(session, lk, started, n))
        await asyncio.gather(*(join(i) for i in range(n)))
        joined = await watcher
    finally:
        await asyncio.gather(*(r.disconnect() for r in rooms), return_exceptions=True)
    return joined


async def _watch_later(session: aiohttp.ClientSession, lk: LiveKitServer,
                       started: dict[str, float], n: int) -> Joins:
    while len(started) < n:  # every join has taken its start time (no await before it)
        await asyncio.sleep(0)
    return await _watch(session, lk, started)


async def voiceops_round(session: aiohttp.ClientSession, lk: LiveKitServer,
                         lkapi: api.LiveKitAPI, n: int) -> tuple[Joins, Counter[str]]:
    """n concurrent CreateDispatch to new rooms; per-room time to the agent ACTIVE, and jobs
    per worker id."""
    prefix = f"burst-vo-{uuid.uuid4().hex[:6]}"
    started: dict[str, float] = {}

    async def dispatch(i: int) -> None:
        name = f"{prefix}-{i}"
        started[name] = time.monotonic()
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=AGENT, room=name))

    watcher = asyncio.ensure_future(_watch_later(session, lk, started, n))
    await asyncio.gather(*(dispatch(i) for i in range(n)))
    joined = await watcher
    state = await _state(session, lk)
    spread: Counter[str] = Counter(
        job["state"].get("worker_id", "?") for d in state["dispatches"]
        if d["room"].startswith(prefix) for job in d["jobs"])
    return joined, spread


def job_processes(sup: Supervisor) -> list[int]:
    """Children (job processes, the forkserver) of each ready worker, by worker."""
    counts = []
    for proc in sup.procs("worker"):
        try:
            counts.append(len(psutil.Process(proc["pid"]).children(recursive=True)))
        except psutil.NoSuchProcess:
            counts.append(-1)
    return counts


def wait_idle(sup: Supervisor, lk: LiveKitServer, baseline_children: list[int]) -> None:
    """No agent in any room, and every worker's job-process pool back where it started."""
    wait_for(lambda: not _active_agents(lk.state()), JOIN_TIMEOUT_S, "every agent gone")
    wait_for(lambda: job_processes(sup) == baseline_children, JOIN_TIMEOUT_S,
             f"each worker back at its idle job processes {baseline_children}")


@dataclass(frozen=True)
class Measured:
    sdk_s: list[float]
    voiceops_s: list[float]
    sdk_signal_s: list[float]
    voiceops_signal_s: list[float]
    spreads: list[Counter[str]]


async def _measure(sup: Supervisor, lk: LiveKitServer, sizes: BurstSizes,
                   idle_children: list[int]) -> Measured:
    sdk, vo = Joins([], []), Joins([], [])
    spreads: list[Counter[str]] = []
    async with aiohttp.ClientSession() as session, \
            api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
        for _ in range(sizes.rounds):
            joins = await sdk_round(session, lk, sizes.joins)
            sdk.active_s.extend(joins.active_s)
            sdk.signalled_s.extend(joins.signalled_s)
            await asyncio.to_thread(wait_idle, sup, lk, idle_children)
            joins, spread = await voiceops_round(session, lk, lkapi, sizes.joins)
            vo.active_s.extend(joins.active_s)
            vo.signalled_s.extend(joins.signalled_s)
            spreads.append(spread)
            await asyncio.to_thread(wait_idle, sup, lk, idle_children)
    return Measured(sdk.active_s, vo.active_s, sdk.signalled_s, vo.signalled_s, spreads)


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: BurstSizes) -> Section:
    emulator = EmulatorProcess()
    lk = emulator.start()
    sup: Supervisor | None = None
    with tempfile.TemporaryDirectory(prefix="vo-bench-", dir="/tmp") as tmp:
        try:
            port = free_port()
            cfg = config(Path(tmp) / "voiceops.toml", lk, port)
            sup = Supervisor(Path(tmp), cfg, port, env={
                "LIVEKIT_API_SECRET": DEV_API_SECRET,
                "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "3"})
            sup.wait_ready_workers(WORKERS, timeout_s=120)
            wait_for(lambda: all(c >= IDLE_PROCESSES for c in job_processes(sup)), 120,
                     "job processes warm")
            idle = job_processes(sup)
            measured = asyncio.run(_measure(sup, lk, sizes, idle))
        finally:
            if sup is not None:
                sup.close()
            emulator.stop()
    return _section(measured, sizes)


def _section(m: Measured, sizes: BurstSizes) -> Section:
    most = max(max(s.values()) for s in m.spreads)
    cap = math.ceil(sizes.joins / WORKERS) + 2
    checks = (
        Check(f"time to join p95, {sizes.joins} concurrent dispatches vs {sizes.joins} bare SDK "
              "joins", percentile(m.voiceops_s, 95), percentile(m.sdk_s, 95), "s",
              P95_MAX_RATIO, note="dispatch -> agent ACTIVE vs connect -> ACTIVE"),
        Check(f"most jobs on one worker vs ceil({sizes.joins}/{WORKERS}) + 2",
              float(most), float(cap), "jobs", 1.0, note="spread over the workers"),
    )
    info = (f"{sizes.rounds} round(s) of {sizes.joins} per leg; p50/p95 s: voiceops "
            f"{percentile(m.voiceops_s, 50):.2f}/{percentile(m.voiceops_s, 95):.2f}, bare SDK "
            f"{percentile(m.sdk_s, 50):.2f}/{percentile(m.sdk_s, 95):.2f}; p50 ratio "
            f"{percentile(m.voiceops_s, 50) / percentile(m.sdk_s, 50):.2f}x",
            f"to the signal join (before WebRTC) p50/p95 s: voiceops "
            f"{percentile(m.voiceops_signal_s, 50):.2f}/{percentile(m.voiceops_signal_s, 95):.2f}"
            f", bare SDK {percentile(m.sdk_signal_s, 50):.2f}/"
            f"{percentile(m.sdk_signal_s, 95):.2f} (voiceops' leg includes LiveKit's dispatch: "
            "the emulator's 0.2 s affinity wait, offer, answer, assignment)",
            "jobs per worker by round: " + "; ".join(
                ", ".join(str(c) for c in sorted(s.values(), reverse=True)) for s in m.spreads))
    return Section("bursts (20 concurrent dispatches vs bare SDK joins)", checks, info)
