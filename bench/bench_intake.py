"""Supervisor event intake: datagrams/s through the real event socket, decoded and recorded.

Both legs use the supervisor's :class:`~voiceops.supervisor.eventsock.EventSocket` (asyncio
datagram endpoint on a unix socket) and the same stream of datagrams, sent from a thread
with a *blocking* socket so nothing is lost and the receiver sets the pace:

* voiceops: ``events.decode`` then :meth:`Monitor.on_event` (its Recorder updates the
  Prometheus metrics, its Correlator tracks each dispatch), which is what the supervisor's
  datagram callback does for the monitor sink;
* baseline: ``events.decode`` only.

The stream is what one dispatch produces: dispatch_created, job_request, jobs(1),
agent_joined, job_ended, jobs(0), each dispatch with its own ids.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voiceops import events
from voiceops.config import Secrets, from_dict
from voiceops.metrics import Metrics
from voiceops.monitor.monitor import Monitor
from voiceops.supervisor.eventsock import EventSocket

from .report import Check, Section

AGENT = "letta-voice-agent"
RECEIVE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class IntakeSizes:
    dispatches: int
    repeats: int


QUICK = IntakeSizes(dispatches=3_000, repeats=2)
FULL = IntakeSizes(dispatches=10_000, repeats=3)


def dispatch_stream(n: int) -> list[bytes]:
    """The six datagrams of each of ``n`` dispatches, in the order they arrive."""
    out: list[bytes] = []
    for i in range(n):
        did, jid, room = f"AD_{i:012x}", f"AJ_{i:012x}", f"room-{i:08x}"
        for ev in (events.DispatchCreated(dispatch_id=did, room=room, agent_name=AGENT,
                                          latency_s=0.004, process="proxy"),
                   events.JobRequest(job_id=jid, dispatch_id=did, room=room, agent_name=AGENT,
                                     process="worker-0"),
                   events.Jobs(active_jobs=1, process="worker-0"),
                   events.AgentJoined(job_id=jid, dispatch_id=did, room=room,
                                      process="worker-0"),
                   events.JobEnded(job_id=jid, dispatch_id=did, room=room, process="worker-0"),
                   events.Jobs(active_jobs=0, process="worker-0")):
            out.append(events.encode(ev))
    return out


def make_monitor() -> Monitor:
    cfg = from_dict({"agent": {"name": AGENT}})
    return Monitor(cfg, Secrets(), Metrics(AGENT), status_provider=dict)


class Recording:
    """The voiceops leg; :meth:`verify` proves the events really reached the metrics."""

    def __init__(self) -> None:
        self.monitor = make_monitor()

    def __call__(self, data: bytes) -> None:
        self.monitor.on_event(events.decode(data))

    def verify(self, dispatches: int) -> None:
        seen = self.monitor.metrics.registry.get_sample_value(
            "voiceops_time_to_join_seconds_count", {"agent_name": AGENT})
        if seen != dispatches:
            raise RuntimeError(f"the monitor observed {seen} joins, expected {dispatches}")


def decode_only(data: bytes) -> None:
    events.decode(data)


def _send_all(path: str, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(RECEIVE_TIMEOUT_S)  # blocking, but never forever
        for data in datagrams:
            sock.sendto(data, path)


async def receive_ns_per_datagram(handler: Callable[[bytes], None], datagrams: list[bytes],
                                  sock_path: Path) -> float:
    """ns per datagram from the first send to the last one handled."""
    done = asyncio.Event()
    count = 0
    errors: list[BaseException] = []

    def on_datagram(data: bytes, _sender: int = 0) -> None:
        nonlocal count
        try:
            handler(data)
        except Exception as exc:  # recorded and re-raised below: a broken path must fail
            errors.append(exc)
        count += 1
        if count == len(datagrams):
            done.set()

    sock = await EventSocket.open(sock_path, on_datagram)
    sender = threading.Thread(target=_send_all, args=(str(sock_path), datagrams),
                              name="bench-intake-sender", daemon=True)
    try:
        start = time.perf_counter_ns()
        sender.start()
        await asyncio.wait_for(done.wait(), RECEIVE_TIMEOUT_S)
        elapsed = time.perf_counter_ns() - start
    finally:
        await sock.aclose()  # a sender still blocked now fails at once and ends
        await asyncio.to_thread(sender.join, RECEIVE_TIMEOUT_S)
    if errors:
        raise RuntimeError(f"{len(errors)} datagrams failed in the handler: {errors[0]!r}")
    return elapsed / len(datagrams)


async def _measure(sizes: IntakeSizes) -> dict[str, float]:
    datagrams = dispatch_stream(sizes.dispatches)
    best = {"record": float("inf"), "decode": float("inf")}
    with tempfile.TemporaryDirectory(prefix="vo-bench-", dir="/tmp") as tmp:
        for i in range(sizes.repeats):
            recording = Recording()
            for name, handler in (("record", recording), ("decode", decode_only)):
                path = Path(tmp) / f"{name}-{i}.sock"
                ns = await receive_ns_per_datagram(handler, datagrams, path)
                best[name] = min(best[name], ns)
            recording.verify(sizes.dispatches)
    return best


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: IntakeSizes) -> Section:
    best = asyncio.run(_measure(sizes))
    n = sizes.dispatches * 6
    checks = (Check("received + decoded + recorded vs received + decoded", best["record"],
                    best["decode"], "ns/datagram", 2.0,
                    note="Monitor.on_event: metrics and correlation"),)
    info = ((f"{n:,} datagrams per leg, best of {sizes.repeats}: "
             f"{1e9 / best['record']:,.0f}/s recorded, {1e9 / best['decode']:,.0f}/s decode-only"),)
    return Section("supervisor event intake", checks, info)
