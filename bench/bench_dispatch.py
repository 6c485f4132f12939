"""Dispatch overhead: ``POST /api/dispatch-agent`` through the real proxy process vs the same
dispatch made directly with ``livekit.api.LiveKitAPI``, against one emulator process.

Every request uses a new room, so the proxy does what it does for a browser's first
dispatch: validate, rate-limit, look the room up in its room book (new: nothing to reuse),
``CreateDispatch``, answer JSON, emit ``dispatch_created``. Two baselines (issue 12's):

* ``direct``: one ``CreateDispatch`` on a long-lived ``LiveKitAPI`` (what a caller without
  voiceops would do, and the proxy's own client setup);
* ``original``: the pattern the system voiceops replaced: a new HTTP session per request,
  ``ListRooms`` then ``CreateDispatch``.

The proxy's caller is a browser on another machine, so the proxy leg calls it with a minimal
keep-alive HTTP/1.1 client (``bench/lean_http.py``) whose CPU this machine barely feels.
Printed for reading only: the same proxy called through aiohttp's client (what the caller's
HTTP library adds), and the bare hop (``bench/floor_hop.py``: an aiohttp server relaying to
``LiveKitAPI``). The legs are interleaved request by request (rotating the order) so
background load from other processes hits them alike, from one client process on uvloop (as
the proxy runs). Latency is measured at the client, request to answer.
Then throughput: the proxy and the direct client, each with 32 requests in flight, in
alternating timed runs long enough for a steady state (a run of 268 requests lasted ~90 ms
and its rate swung 2,400–3,000/s from one run to the next).
Round trips are counted by the emulator (``twirp_calls`` in ``/emulator/state``) over a phase
of new-room dispatches through the proxy alone.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import uvloop
from livekit import api

from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer

from .event_sink import SinkProcess
from .lean_http import LeanCaller
from .procs import (
    AGENT,
    BenchError,
    FloorHopProcess,
    ProxyProcess,
    assert_gone,
    write_proxy_config,
)
from .report import Check, Section, percentile

REQUEST_TIMEOUT_S = 10.0
LATENCY_ROOM = r"-proxy-\d+$"  # the proxy leg's rooms in the latency phase
Leg = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DispatchSizes:
    requests: int  # per leg
    warmup: int
    rate_runs: int  # timed concurrency runs per leg, alternating with the other leg's
    rate_requests: int  # requests in each timed run
    counted: int  # proxy dispatches in the round-trip counting phase


QUICK = DispatchSizes(requests=200, warmup=20, rate_runs=2, rate_requests=500, counted=50)
FULL = DispatchSizes(requests=1_000, warmup=50, rate_runs=4, rate_requests=1_500, counted=200)
CONCURRENCY = 32
# Issue 12's targets, against the same-run baselines.
P50_MAX_RATIO, P95_MAX_RATIO = 1.3, 1.5  # proxy vs one raw CreateDispatch
ORIGINAL_MAX_RATIO = 0.5  # proxy p50 vs the original pattern
RATE_MIN_RATIO = 0.8  # proxy dispatches/s vs the raw client's at CONCURRENCY


@dataclass(frozen=True)
class Latencies:
    proxy_s: list[float]
    proxy_aiohttp_s: list[float]
    floor_s: list[float]
    direct_s: list[float]
    original_s: list[float]


@dataclass(frozen=True)
class Throughput:
    requests: int
    seconds: float
    errors: int

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


def check_answer(status: int, body: object) -> None:
    ok = isinstance(body, dict) and body.get("success") and not body.get("reused")
    if status != 200 or not ok:
        raise BenchError(f"proxy answered {status}: {body}")


def lean_leg(caller: LeanCaller) -> Leg:
    async def call(room: str) -> None:
        check_answer(*await caller.post_json("/api/dispatch-agent", {"room": room}))

    return call


def proxy_leg(session: aiohttp.ClientSession, url: str) -> Leg:
    async def call(room: str) -> None:
        async with session.post(url + "/api/dispatch-agent", json={"room": room}) as resp:
            body = await resp.json()
        check_answer(resp.status, body)

    return call


def direct_leg(lk: api.LiveKitAPI) -> Leg:
    async def call(room: str) -> None:
        req = api.CreateAgentDispatchRequest(agent_name=AGENT, room=room)
        created = await lk.agent_dispatch.create_dispatch(req)
        if not created.id:
            raise BenchError("CreateDispatch answered without a dispatch id")

    return call


def original_leg(http_url: str, api_key: str, api_secret: str,
                 timeout: aiohttp.ClientTimeout) -> Leg:
    """A new session per request, ListRooms then CreateDispatch (the replaced system's way)."""
    async def call(room: str) -> None:
        async with api.LiveKitAPI(http_url, api_key, api_secret, timeout=timeout) as lk:
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


async def interleave(legs: dict[str, Leg], sizes: DispatchSizes) -> dict[str, list[float]]:
    run_id = uuid.uuid4().hex[:6]
    samples: dict[str, list[float]] = {name: [] for name in legs}
    names = list(legs)
    for i in range(sizes.warmup + sizes.requests):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = await timed(legs[name], f"bench-{run_id}-{name}-{i}")
            if i >= sizes.warmup:
                samples[name].append(seconds)
    return samples


async def burst(leg: Leg, n: int, prefix: str) -> Throughput:
    """``n`` new-room requests with CONCURRENCY in flight; requests per second and errors."""
    rooms = iter(range(n))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in rooms:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await leg(f"{prefix}-{i}")
            except (BenchError, aiohttp.ClientError, api.TwirpError, TimeoutError,
                    ConnectionError):
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return Throughput(n, time.perf_counter() - start, errors)


@dataclass(frozen=True)
class Measured:
    latencies: Latencies
    rates: dict[str, Throughput]
    calls_per_dispatch: float
    calls_seen: dict[str, int]


async def count_round_trips(leg: Leg, server: LiveKitServer,
                            n: int) -> tuple[float, dict[str, int]]:
    """Twirp calls the emulator received per proxy dispatch to a new room (proxy alone)."""
    run_id = uuid.uuid4().hex[:6]
    before = Counter(server.state()["twirp_calls"])
    for i in range(n):
        await timed(leg, f"bench-{run_id}-count-{i}")
    delta = Counter(server.state()["twirp_calls"]) - before
    return sum(delta.values()) / n, dict(delta)


async def _measure(proxy_url: str, floor_url: str, server: LiveKitServer,
                   sizes: DispatchSizes) -> Measured:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    caller, floor_caller = LeanCaller(proxy_url), LeanCaller(floor_url)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session, \
            api.LiveKitAPI(server.http_url, server.api_key, server.api_secret,
                           timeout=timeout) as lk:
        proxy, direct = lean_leg(caller), direct_leg(lk)
        legs = {"proxy": proxy, "proxy_aiohttp": proxy_leg(session, proxy_url),
                "floor": lean_leg(floor_caller), "direct": direct,
                "original": original_leg(server.http_url, server.api_key, server.api_secret,
                                         timeout)}
        try:
            samples = await interleave(legs, sizes)
            per_call, seen = await count_round_trips(proxy, server, sizes.counted)
            rates = await _rates({"proxy": proxy, "direct": direct}, sizes)
        finally:
            caller.close()
            floor_caller.close()
    return Measured(Latencies(samples["proxy"], samples["proxy_aiohttp"], samples["floor"],
                              samples["direct"], samples["original"]),
                    rates, per_call, seen)


async def _rates(legs: dict[str, Leg], sizes: DispatchSizes) -> dict[str, Throughput]:
    """Each leg's requests per second over its timed runs, the legs' runs alternating (and
    the order flipped every round) so any drift is shared."""
    run_id = uuid.uuid4().hex[:6]
    runs: dict[str, list[Throughput]] = {name: [] for name in legs}
    for name, leg in legs.items():  # untimed: 32 connections opened, the latency phase's
        await burst(leg, warm_burst(sizes), f"bench-{run_id}-{name}-warm")  # wake settled
    names = list(legs)
    for rep in range(sizes.rate_runs):
        for name in names if rep % 2 == 0 else names[::-1]:
            runs[name].append(await burst(legs[name], sizes.rate_requests,
                                          f"bench-{run_id}-{name}-burst{rep}"))
    return {name: _combine(parts) for name, parts in runs.items()}


def warm_burst(sizes: DispatchSizes) -> int:
    """Requests per leg at concurrency before the timed runs (a stall of a second or so
    right after the latency phase, seen in both legs alike, fell on whichever ran first)."""
    return CONCURRENCY * sizes.warmup // 10


def expected_events(sizes: DispatchSizes) -> int:
    """The proxy's dispatches: both proxy legs of the latency phase, the counted phase, the
    proxy's concurrency runs and their warm-up."""
    return (2 * (sizes.warmup + sizes.requests) + sizes.counted
            + sizes.rate_runs * sizes.rate_requests + warm_burst(sizes))


def _combine(parts: list[Throughput]) -> Throughput:
    return Throughput(sum(p.requests for p in parts), sum(p.seconds for p in parts),
                      sum(p.errors for p in parts))


def _checks(m: Measured) -> tuple[Check, ...]:
    ms = 1000.0
    lat, rates = m.latencies, m.rates
    out = [Check("LiveKit round trips per new-room dispatch vs one CreateDispatch",
                 m.calls_per_dispatch, 1.0, "calls", 1.0,
                 note="counted by the emulator; the reuse check is answered from the room book")]
    for q, limit in ((50, P50_MAX_RATIO), (95, P95_MAX_RATIO)):
        out.append(Check(f"proxy p{q} vs one raw CreateDispatch p{q} (long-lived LiveKitAPI)",
                         percentile(lat.proxy_s, q) * ms, percentile(lat.direct_s, q) * ms,
                         "ms", limit, note="issue 12"))
    out.append(Check("proxy p50 vs the original pattern p50 (new session, ListRooms + "
                     "CreateDispatch)", percentile(lat.proxy_s, 50) * ms,
                     percentile(lat.original_s, 50) * ms, "ms", ORIGINAL_MAX_RATIO,
                     note="issue 12"))
    # Throughput is "higher is better": compared as time per request (0.8x the rate = 1.25x).
    out.append(Check(f"proxy vs the raw client at concurrency {CONCURRENCY} (time per request)",
                     1e3 / rates["proxy"].per_s, 1e3 / rates["direct"].per_s, "ms/req",
                     1 / RATE_MIN_RATIO,
                     note=f"rate >= {RATE_MIN_RATIO}x: {rates['proxy'].per_s:,.0f}/s vs "
                          f"{rates['direct'].per_s:,.0f}/s"))
    out.append(Check("errors during the concurrency runs",
                     float(sum(r.errors for r in rates.values())), 0.0, "errors", 0.0))
    return tuple(out)


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: DispatchSizes) -> Section:
    measured, counts, own_s = _run_legs(sizes)
    info = _info(sizes, measured, own_s, counts.get("dispatch_created", 0))
    return Section("dispatch overhead (proxy vs LiveKitAPI, loopback)", _checks(measured), info)


def _run_legs(sizes: DispatchSizes) -> tuple[Measured, dict[str, int], list[float]]:
    """The emulator, the proxy (its events to a sink process) and the bare hop; every leg
    measured from one client; everything stopped and checked gone."""
    emulator = EmulatorProcess()
    server = emulator.start()
    with tempfile.TemporaryDirectory(prefix="vo-bench-", dir="/tmp") as tmp:
        # The proxy's events go to a process of their own, as to the supervisor.
        events = SinkProcess(Path(tmp) / "ev.sock", expected_events(sizes), LATENCY_ROOM)
        proxy: ProxyProcess | None = None
        floor: FloorHopProcess | None = None
        try:
            config = write_proxy_config(Path(tmp) / "proxy.toml", server.url)
            proxy = ProxyProcess(config, events, Path(tmp) / "proxy.log")
            floor = FloorHopProcess(server.http_url, server.api_key, server.api_secret)
            # The client on uvloop, as the proxy and the bare hop: every leg alike.
            measured = uvloop.run(_measure(proxy.url, floor.url, server, sizes))
            counts, own_s = events.finish()
        finally:
            if floor is not None:
                floor.stop()
            if proxy is not None:
                proxy.stop()
            events.stop()
            emulator.stop()
            if proxy is not None:
                assert_gone(proxy.tree)
            if floor is not None:
                assert_gone(floor.tree)
            assert_gone(events.tree)
    return measured, counts, own_s


def _info(sizes: DispatchSizes, measured: Measured, own_s: list[float],
          events_seen: int) -> tuple[str, ...]:
    lat = measured.latencies
    direct_p50 = percentile(lat.direct_s, 50)
    legs = (("proxy", lat.proxy_s), ("direct", lat.direct_s), ("original", lat.original_s),
            ("proxy via aiohttp's client", lat.proxy_aiohttp_s), ("bare hop", lat.floor_s))
    return (
        (f"{sizes.requests} requests per leg after {sizes.warmup} warm-up, interleaved; "
         "p50/p95 ms: " + ", ".join(
             f"{name} {percentile(s, 50) * 1e3:.2f}/{percentile(s, 95) * 1e3:.2f}"
             for name, s in legs)),
        (f"for reading: the proxy called through aiohttp's client p50 "
         f"{percentile(lat.proxy_aiohttp_s, 50) / direct_p50:.2f}x one raw CreateDispatch "
         f"(the caller's HTTP library's share: "
         f"{(percentile(lat.proxy_aiohttp_s, 50) - percentile(lat.proxy_s, 50)) * 1e3:.2f}"
         f" ms); the bare hop (aiohttp server + LiveKitAPI, bench/floor_hop.py) "
         f"{percentile(lat.floor_s, 50) / direct_p50:.2f}x; the proxy "
         f"{percentile(lat.proxy_s, 50) / percentile(lat.floor_s, 50):.2f}x the bare hop"),
        (f"concurrency runs: {sizes.rate_runs} x {sizes.rate_requests} requests per leg, "
         f"alternating: proxy {measured.rates['proxy'].seconds:.2f} s, direct "
         f"{measured.rates['direct'].seconds:.2f} s in total"),
        (f"the proxy's own time per dispatch (its event's latency_s, LiveKit's answer "
         f"included) p50 {percentile(own_s, 50) * 1e3:.2f} ms: the client's round "
         f"trip to it adds "
         f"{(percentile(lat.proxy_s, 50) - percentile(own_s, 50)) * 1e3:.2f} ms"),
        f"round trips over {sizes.counted} proxy dispatches: {measured.calls_seen}",
        f"dispatch_created events received from the proxy: {events_seen}/{expected_events(sizes)}")
