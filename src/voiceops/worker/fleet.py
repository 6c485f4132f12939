"""Jobs spread over the supervisor's workers: a worker well ahead of a ready peer passes an offer.

LiveKit picks a worker at random, weighted by 1 - its last reported load (Go:
``selectWorkerWeightedByLoad``). A burst's JobRequests are all placed before any new load
report arrives, so each is a coin toss: with two workers, one round of 20 in four put 13 or
more on one worker (bench/README.md, *burst*). But LiveKit offers a job that a worker answers
``available=false`` (without ``terminate``) to another worker it has not tried yet, so a worker
that holds more jobs than a ready peer passes the offer on: the counts stay within one of each
other, at the price of one more offer round trip (a few ms) for the call passed on. A worker's
jobs here are its active jobs plus the offers it holds (being decided, or accepted and not yet
launched), and the jobs it passed that no peer has listed as taken yet count toward its peers:
in a burst every offer arrives at once, and a count without them made one worker pass so many
that its peer, bound to take every passed job, ended up ahead (13 of 20); counting a pass
after its taker's record showed it made a worker take one job too many (3 to 1).

Safe by construction: a job is passed at most once. A worker lists the jobs it passed in its
record before it answers, and a worker offered a job a peer passed takes it. A worker passes
only toward a peer that says it is ready (registered with LiveKit, not reconnecting, draining,
standing by or full), whose word is fresh (``FRESH_S``) and whose process is alive, so a dead
or reconnecting worker is never passed to.

The workers of one supervisor share a directory (``$VOICEOPS_FLEET_DIR``, set by the supervisor
unless ``workers.spread_jobs = false``): each writes its own file, named by its pid, holding its
jobs (active, and accepted but not yet launched), whether it is ready, when it wrote
(``CLOCK_MONOTONIC``, one clock for the machine), and the jobs it lately passed on and took
from a peer. A record is one
fixed-size ``pwrite`` ending in its CRC-32 (a file replaced by rename cost 160 µs a write, this
about 3 µs); a reader that catches one half-written sees a bad CRC and counts no such peer,
which only means no pass toward it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger("voiceops.worker")

PASS_MARGIN: Final = 1  # pass when holding this many jobs more than a ready peer
# A peer's word counts this long; it writes every HEARTBEAT_S from its event loop, so a peer
# whose loop is busy (in the middle of a burst's offers) counts as unknown: never passed to.
HEARTBEAT_S: Final = 0.05
FRESH_S: Final = 0.1
# Before passing, wait this long and look again: a peer's record lags the offers in its socket.
SETTLE_S: Final = 0.03
PASSED_KEEP_S: Final = 5.0  # longer than LiveKit's 3 s JobRequest deadline
IN_FLIGHT_S: Final = 0.5  # a pass no peer lists as taken counts this long, at most
RECORD_BYTES: Final = 1024  # room for ~30 job ids; the oldest are dropped past that
ENV: Final = "VOICEOPS_FLEET_DIR"


@dataclass(frozen=True)
class Peer:
    pid: int
    jobs: int
    ready: bool
    stamped_ns: int
    passed: frozenset[str] = frozenset()  # job ids this peer passed on lately
    taken: frozenset[str] = frozenset()  # job ids a peer passed that this one took


def passes(job_id: str, mine: int, peers: Iterable[Peer], now_ns: int,
           alive: Callable[[int], bool], in_flight: int = 0, margin: int = PASS_MARGIN,
           fresh_s: float = FRESH_S) -> bool:
    """Whether a worker holding ``mine`` jobs (this offer not counted) passes ``job_id`` on;
    ``in_flight``: jobs it passed so recently that a peer's record may not show them yet."""
    peers = list(peers)
    if any(job_id in p.passed for p in peers):
        return False  # passed once already: it ends here
    fresh_ns = int(fresh_s * 1e9)
    return any(p.ready and 0 <= now_ns - p.stamped_ns <= fresh_ns
               and p.jobs + in_flight + margin <= mine and alive(p.pid) for p in peers)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def encode(jobs: int, ready: bool, stamped_ns: int, passed: Iterable[str],
           taken: Iterable[str] = ()) -> bytes:
    """One record: ``"<jobs> <ready 0|1> <stamped_ns> <passed ids|-> <taken ids|-> <crc32>"``,
    padded to ``RECORD_BYTES`` (the oldest ids are left out if they would not fit)."""
    lists = [list(passed), list(taken)]
    while True:
        ids = " ".join(",".join(ids) or "-" for ids in lists)
        body = f"{jobs} {int(ready)} {stamped_ns} {ids}"
        if len(body) <= RECORD_BYTES - 11 or not any(lists):
            break
        max(lists, key=len).pop(0)
    line = f"{body} {zlib.crc32(body.encode('ascii')):08x}\n"
    return line.encode("ascii").ljust(RECORD_BYTES, b" ")


def parse(pid: int, raw: bytes) -> Peer | None:
    """A peer's record, or None when unreadable (torn, foreign or malformed)."""
    body, _, crc = raw.decode("ascii", "replace").strip().rpartition(" ")
    parts = body.split(" ")
    if len(parts) != 5 or crc != f"{zlib.crc32(body.encode('ascii', 'replace')):08x}" \
            or not all(p.isdigit() for p in parts[:3]) or parts[1] not in ("0", "1"):
        return None
    passed, taken = (frozenset() if p == "-" else frozenset(p.split(",")) for p in parts[3:])
    return Peer(pid, int(parts[0]), parts[1] == "1", int(parts[2]), passed, taken)


class FleetBoard:
    """This worker's record in the shared directory, and its peers' records."""

    def __init__(self, directory: Path, pid: int | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        self._clock_ns = clock_ns
        self._path = directory / str(self.pid)
        self._was_ready: bool | None = None
        self._passed: dict[str, int] = {}  # job id -> when passed on (ns)
        self._taken: dict[str, int] = {}  # job id a peer passed -> when taken here (ns)
        directory.mkdir(parents=True, exist_ok=True)
        self._sweep()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o644)

    def publish(self, jobs: int, ready: bool) -> None:
        """Write this worker's record in place (one fixed-size write)."""
        now_ns = self._clock_ns()
        horizon_ns = now_ns - int(PASSED_KEEP_S * 1e9)
        if self._passed:
            self._passed = {job: at for job, at in self._passed.items() if at >= horizon_ns}
        if self._taken:
            self._taken = {job: at for job, at in self._taken.items() if at >= horizon_ns}
        os.pwrite(self._fd, encode(jobs, ready, now_ns, self._passed, self._taken), 0)
        if self._was_ready is not None and self._was_ready != ready:
            logger.info("fleet_ready_changed ready=%s jobs=%d", ready, jobs)
        self._was_ready = ready

    def peers(self) -> list[Peer]:
        found = []
        for entry in os.scandir(self.directory):
            if not entry.name.isdigit() or int(entry.name) == self.pid:
                continue
            with contextlib.suppress(OSError):
                # A read that met a write shows a bad CRC: the next one sees the record whole.
                peer = parse(int(entry.name), Path(entry.path).read_bytes()) \
                    or parse(int(entry.name), Path(entry.path).read_bytes())
                if peer is not None:
                    found.append(peer)
        return found

    def would_pass(self, job_id: str, mine: int) -> bool:
        """Whether this offer would be passed on, on what the records say now (a job a peer
        passed is taken here, and noted as taken)."""
        now_ns, peers = self._clock_ns(), self.peers()
        if self._passed_by_peer(job_id, peers, now_ns):
            return False
        return passes(job_id, mine, peers, now_ns, pid_alive, self._in_flight(peers, now_ns))

    def passes(self, job_id: str, mine: int) -> bool:
        """Whether to pass this offer on, looking again; if so, noted for peers (publish
        before answering)."""
        now_ns, peers = self._clock_ns(), self.peers()
        if self._passed_by_peer(job_id, peers, now_ns) \
                or not passes(job_id, mine, peers, now_ns, pid_alive,
                              self._in_flight(peers, now_ns)):
            return False
        self._passed[job_id] = now_ns
        return True

    def _passed_by_peer(self, job_id: str, peers: list[Peer], now_ns: int) -> bool:
        if not any(job_id in p.passed for p in peers):
            return False
        self._taken[job_id] = now_ns  # its passer stops counting it toward us once it reads this
        return True

    def _in_flight(self, peers: list[Peer], now_ns: int) -> int:
        """Jobs passed on lately that no peer lists as taken yet (on their way to one)."""
        recent_ns = now_ns - int(IN_FLIGHT_S * 1e9)
        taken = frozenset().union(*(p.taken for p in peers))
        return sum(at >= recent_ns and job not in taken for job, at in self._passed.items())

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _sweep(self) -> None:
        """Records of workers that died without removing theirs (kill -9, OOM)."""
        for entry in os.scandir(self.directory):
            if entry.name.isdigit() and not pid_alive(int(entry.name)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
