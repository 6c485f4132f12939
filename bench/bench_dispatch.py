"""Dispatch overhead: ``POST /api/dispatch-agent`` through the real proxy process vs the same
dispatch made directly with ``livekit.api.LiveKitAPI``, against one emulator process.

Every request uses a new room, so the proxy does what it does for a browser's first
dispatch: validate, rate-limit, ``ListRooms`` (no room, so no dispatch to reuse),
``CreateDispatch``, emit ``dispatch_created``, answer JSON. Two baselines, one session each,
the same long-lived-connection setup as the proxy's own client:

* ``direct``: one ``CreateDispatch`` (what a caller without voiceops would do);
* ``same calls``: ``ListRooms`` then ``CreateDispatch`` directly (the proxy's LiveKit calls
  without the proxy), which isolates what the proxy itself adds.

The three legs are interleaved request by request (rotating the order) so background load
from other processes hits them alike. Latency is measured at the client, request to answer.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from livekit import api

from voiceops.testing.livekit.pytest_plugin import EmulatorProcess

from .procs import AGENT, BenchError, EventReader, ProxyProcess, assert_gone, write_proxy_config
from .report import Check, Section, percentile

REQUEST_TIMEOUT_S = 10.0
Leg = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DispatchSizes:
    requests: int  # per leg
    warmup: int


QUICK = DispatchSizes(requests=200, warmup=20)
FULL = DispatchSizes(requests=1_000, warmup=50)


@dataclass(frozen=True)
class Latencies:
    proxy_s: list[float]
    direct_s: list[float]
    same_calls_s: list[float]


def proxy_leg(session: aiohttp.ClientSession, url: str) -> Leg:
    async def call(room: str) -> None:
        async with session.post(url + "/api/dispatch-agent", json={"room": room}) as resp:
            body = await resp.json()
        if resp.status != 200 or not body.get("success") or body.get("reused"):
            raise BenchError(f"proxy answered {resp.status}: {body}")

    return call


def direct_leg(lk: api.LiveKitAPI) -> Leg:
    async def call(room: str) -> None:
        req = api.CreateAgentDispatchRequest(agent_name=AGENT, room=room)
        created = await lk.agent_dispatch.create_dispatch(req)
        if not created.id:
            raise BenchError("CreateDispatch answered without a dispatch id")

    return call


def same_calls_leg(lk: api.LiveKitAPI) -> Leg:
    async def call(room: str) -> None:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        if rooms.rooms:
            raise BenchError(f"room {room} already exists")
        await direct_leg(lk)(room)

    return call


async def timed(leg: Leg, room: str) -> float:
    start = time.perf_counter()
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        await leg(room)
    return time.perf_counter() - start


async def interleave(legs: dict[str, Leg], sizes: DispatchSizes,
                     between: Callable[[], None]) -> dict[str, list[float]]:
    run_id = uuid.uuid4().hex[:6]
    samples: dict[str, list[float]] = {name: [] for name in legs}
    names = list(legs)
    for i in range(sizes.warmup + sizes.requests):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = await timed(legs[name], f"bench-{run_id}-{name}-{i}")
            if i >= sizes.warmup:
                samples[name].append(seconds)
        between()
    return samples


async def _measure(proxy_url: str, livekit_http_url: str, api_key: str, api_secret: str,
                   sizes: DispatchSizes, events: EventReader) -> Latencies:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            api.LiveKitAPI(livekit_http_url, api_key, api_secret, timeout=timeout) as lk:
        legs = {"proxy": proxy_leg(session, proxy_url), "direct": direct_leg(lk),
                "same_calls": same_calls_leg(lk)}
        samples = await interleave(legs, sizes, events.drain)
    return Latencies(samples["proxy"], samples["direct"], samples["same_calls"])


def _checks(lat: Latencies) -> tuple[Check, ...]:
    ms = 1000.0
    out = []
    for q in (50, 95):
        proxy = percentile(lat.proxy_s, q) * ms
        out += [Check(f"proxy p{q} vs direct CreateDispatch p{q}", proxy,
                      percentile(lat.direct_s, q) * ms, "ms", 3.0, slack=1.0,
                      note="the proxy makes 2 LiveKit calls for a new room"),
                Check(f"proxy p{q} vs the same 2 calls made directly p{q}", proxy,
                      percentile(lat.same_calls_s, q) * ms, "ms", 1.5, slack=1.0,
                      note="what the proxy itself adds: one HTTP hop + validation + event")]
    return tuple(out)


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: DispatchSizes) -> Section:
    emulator = EmulatorProcess()
    server = emulator.start()
    with tempfile.TemporaryDirectory(prefix="vo-bench-", dir="/tmp") as tmp:
        events = EventReader(Path(tmp) / "ev.sock")
        proxy: ProxyProcess | None = None
        try:
            config = write_proxy_config(Path(tmp) / "proxy.toml", server.url)
            proxy = ProxyProcess(config, events, Path(tmp) / "proxy.log")
            lat = asyncio.run(_measure(proxy.url, server.http_url, server.api_key,
                                       server.api_secret, sizes, events))
        finally:
            if proxy is not None:
                proxy.stop()
            events.close()
            try:
                emulator.stop()
            finally:
                Path(emulator.log_path).unlink(missing_ok=True)
            if proxy is not None:
                assert_gone(proxy.tree)
    events_seen = events.counts.get("dispatch_created", 0)
    total = sizes.warmup + sizes.requests
    info = (f"{sizes.requests} requests per leg after {sizes.warmup} warm-up, interleaved; "
            "p50/p95 ms: " + ", ".join(
                f"{name} {percentile(s, 50) * 1e3:.2f}/{percentile(s, 95) * 1e3:.2f}"
                for name, s in (("proxy", lat.proxy_s), ("direct", lat.direct_s),
                                ("same calls", lat.same_calls_s))),
            f"dispatch_created events received from the proxy: {events_seen}/{total}")
    return Section("dispatch overhead (proxy vs LiveKitAPI, loopback)", _checks(lat), info)

