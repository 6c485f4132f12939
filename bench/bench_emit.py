"""Event emit cost: ``events.emit(JobRequest)`` vs a bare ``sendto`` of the same bytes.

Both legs send to the same bound unix datagram socket. Linux queues only
``net.unix.max_dgram_qlen`` datagrams per receiver (10 by default), so the sends go in
batches that fit the queue and the reader drains between batches, untimed: each timed send
is a real delivery, never an EAGAIN. A second part stalls the reader: every emit must then
return False at once (counted as lost), never block the caller.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from voiceops import events

from .report import Check, Section
from .timing import no_gc

BATCH = 8  # below the kernel's default max_dgram_qlen (10)
STALL_JOIN_TIMEOUT_S = 30.0
# Encoding a flat ten-field event may cost a few sends, not more: see bench/README.md.
EMIT_MAX_RATIO = 6.0


@dataclass(frozen=True)
class EmitSizes:
    ops: int  # sends per leg per repeat
    repeats: int
    stalled_ops: int


QUICK = EmitSizes(ops=4_000, repeats=5, stalled_ops=20_000)
FULL = EmitSizes(ops=20_000, repeats=7, stalled_ops=100_000)


def sample_event() -> events.JobRequest:
    return events.JobRequest(job_id="AJ_4mG2kQ9xTz", dispatch_id="AD_p3Lw8sYc1N",
                             room="support-7f3a9c", agent_name="letta-voice-agent",
                             worker_id="AW_b2Xr7Qe0Lk", process="worker-0")


@contextmanager
def bound_reader() -> Iterator[tuple[str, socket.socket]]:
    """A bound, non-blocking unix datagram socket in a fresh private directory."""
    tmp = Path(tempfile.mkdtemp(prefix="vo-bench-", dir="/tmp"))  # sun_path is 108 bytes
    path = tmp / "ev.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        sock.setblocking(False)
        yield str(path), sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        tmp.rmdir()


def drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            return n
        n += 1


def batched_ns_per_op(send: Callable[[], object], reader: socket.socket, ops: int) -> float:
    """Send ``ops`` times in queue-sized batches; ns per send, counting only the sends."""
    spent = 0
    done = 0
    with no_gc():
        while done < ops:
            start = time.perf_counter_ns()
            for _ in range(BATCH):
                send()
            spent += time.perf_counter_ns() - start
            done += BATCH
            drain(reader)
    return spent / done


def _delivered_costs(path: str, reader: socket.socket, sizes: EmitSizes) -> dict[str, float]:
    """Best ns/op of each leg over interleaved repeats (both under the same background load)."""
    event = sample_event()
    data = events.encode(event)
    emitter = events.Emitter(path)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    raw.setblocking(False)
    legs: dict[str, Callable[[], object]] = {
        "emit": lambda: emitter.emit(event),
        "sendto": lambda: raw.sendto(data, path),
        "events.emit": lambda: events.emit(event),
    }
    best = dict.fromkeys(legs, float("inf"))
    try:
        with _events_env(path):
            for _ in range(sizes.repeats):
                for name, send in legs.items():
                    best[name] = min(best[name], batched_ns_per_op(send, reader, sizes.ops))
    finally:
        emitter.close()
        raw.close()
    if emitter.lost:
        raise RuntimeError(f"{emitter.lost} events lost while the reader was draining")
    return best


@contextmanager
def _events_env(path: str) -> Iterator[None]:
    """Point ``$VOICEOPS_EVENTS`` (what ``events.emit`` reads) at ``path``, then restore it."""
    old = os.environ.get(events.EVENTS_ENV)
    os.environ[events.EVENTS_ENV] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(events.EVENTS_ENV, None)
        else:
            os.environ[events.EVENTS_ENV] = old


@dataclass
class StallOutcome:
    ns_per_call: float = float("inf")
    lost: int = 0
    finished: bool = False


def _stalled(path: str, reader: socket.socket, ops: int, repeats: int) -> StallOutcome:
    """Emit ``ops`` events at a reader that never reads, in a thread we can give up on; in
    ``repeats`` chunks, keeping the best, as the delivered legs do (same method both sides)."""
    out = StallOutcome()
    emitter = events.Emitter(path)
    event = sample_event()
    chunk = max(1, ops // repeats)

    def run() -> None:
        with no_gc():
            for _ in range(repeats):
                start = time.perf_counter_ns()
                for _ in range(chunk):
                    emitter.emit(event)
                out.ns_per_call = min(out.ns_per_call, (time.perf_counter_ns() - start) / chunk)
        out.lost = emitter.lost
        out.finished = True

    thread = threading.Thread(target=run, name="bench-stalled-emit", daemon=True)
    thread.start()
    thread.join(STALL_JOIN_TIMEOUT_S)
    if thread.is_alive():
        reader.close()  # a blocked sendto now fails at once, so the thread ends
        thread.join(STALL_JOIN_TIMEOUT_S)
    emitter.close()
    return out


def run(quick: bool) -> Section:
    return measure(QUICK if quick else FULL)


def measure(sizes: EmitSizes) -> Section:
    with bound_reader() as (path, reader):
        best = _delivered_costs(path, reader, sizes)
        drain(reader)
        stall = _stalled(path, reader, sizes.stalled_ops, sizes.repeats)
    size = len(events.encode(sample_event()))
    checks = [
        Check("Emitter.emit(JobRequest) vs sendto of its bytes", best["emit"], best["sendto"],
              "ns/op", EMIT_MAX_RATIO, note="emit encodes (to_dict + json) then sends"),
        Check("events.emit() vs sendto of its bytes", best["events.emit"], best["sendto"],
              "ns/op", EMIT_MAX_RATIO, note="adds the $VOICEOPS_EVENTS lookup"),
        Check("emit with the reader stalled vs delivered emit",
              stall.ns_per_call if stall.finished else float("inf"), best["emit"], "ns/op", 1.5,
              note="stalled calls fail fast (EAGAIN) and count as lost"),
    ]
    queued = (sizes.stalled_ops // sizes.repeats) * sizes.repeats - stall.lost
    info = [(f"datagram {size} bytes; {sizes.ops:,} sends x {sizes.repeats} repeats per leg, "
             f"best repeat"),
            (f"stalled reader: {sizes.stalled_ops:,} emits, {stall.lost:,} lost, {queued} queued "
             f"(the receive queue limit), finished={stall.finished}")]
    if not stall.finished:
        info.append(f"emit did not return within {STALL_JOIN_TIMEOUT_S:g} s: it BLOCKED")
    return Section("event emit cost (unix datagram)", tuple(checks), tuple(info))

