"""Job-process pre-start sized to demand: the pool keeps ``num_idle_processes`` warm plus one
per JobRequest this worker has accepted and not yet launched.

livekit-agents' ``ProcPool`` warms a new process only once a job is assigned and finds the
queue empty, so under a burst every job past the warm ones waits a whole process start after
its assignment. Counting accepted offers (the request handler's ``launching``; livekit-agents'
own ``_reserved_slots`` also counts probes and offers passed on) starts those processes during
the answer/assignment round trip instead. After the
burst, :func:`trim` closes warm processes above the target, so memory returns to what
``num_idle_processes`` promises. During a burst the reserve itself is refilled only after it
(:func:`idle_target`), so its process starts do not compete with the burst's joins.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from livekit.agents.ipc.proc_pool import ProcPool

# A burst is more job launches within this window than the warm reserve holds. A launched
# job's join (WebRTC set-up) is CPU-bound; on 2 cores, refilling the reserve meanwhile
# (livekit-agents does it at once) competes with it: with 10 warm per worker, a 20-job
# burst cost 4.6 s of CPU until every agent was ACTIVE, 2.9 s with the refill after it.
BURST_WINDOW_S: Final = 2.0


def idle_target(base: int, demand: int, recent_launches: int) -> int:
    """Warm processes wanted: one per accepted, unlaunched job, plus the ``base`` reserve unless
    more than ``base`` jobs were launched within the burst window (refilled after the burst).

    Traffic of at most ``base`` jobs per window keeps its reserve refilled at once, as before."""
    return max(0, demand) + (base if recent_launches <= base else 0)


class DemandPool(ProcPool):
    """A ProcPool whose idle target is the configured one plus ``demand()``.

    Installed on the live pool by :func:`install` (``__class__`` swap: the pool is built inside
    ``AgentServer.run``). The two targets livekit-agents reads are properties here; what it
    writes to them (its load task lowers the target under CPU load) stays the base."""

    _demand: Callable[[], int]
    _base_default: int
    _base_target: int
    _clock: Callable[[], float]
    _launches: deque[float]

    def _wanted(self, base: int) -> int:
        horizon = self._clock() - BURST_WINDOW_S
        while self._launches and self._launches[0] < horizon:
            self._launches.popleft()
        return idle_target(base, self._demand(), len(self._launches))

    def _launched(self, *_: object) -> None:
        self._launches.append(self._clock())

    @property
    def _default_num_idle_processes(self) -> int:
        return self._wanted(self._base_default)

    @_default_num_idle_processes.setter
    def _default_num_idle_processes(self, value: int) -> None:
        self._base_default = value

    @property
    def _target_idle_processes(self) -> int:
        return self._wanted(self._base_target)

    @_target_idle_processes.setter
    def _target_idle_processes(self, value: int) -> None:
        self._base_target = value

    def top_up(self) -> int:
        """Start the processes now wanted at once (how many), as the pool's own loop would on
        its next turn: it looks every 0.1 s, and in a burst each process started is one job
        less waiting (its start takes ~25 ms on an idle machine)."""
        if self._closed or not self._started:
            return 0
        pending = self._warmed_proc_queue.qsize() + len(self._spawn_tasks)
        wanted = max(min(self._target_idle_processes, self._default_num_idle_processes),
                     self._jobs_waiting_for_process)
        for _ in range(wanted - pending):
            task = asyncio.create_task(self._proc_spawn_task())
            self._spawn_tasks.add(task)
            task.add_done_callback(self._spawn_tasks.discard)
        return max(0, wanted - pending)


def install(pool: ProcPool, demand: Callable[[], int],
            clock: Callable[[], float] = time.monotonic) -> DemandPool:
    """Make ``pool`` size its warm processes to ``idle_target(num_idle_processes, demand())``."""
    base_default = pool.__dict__.pop("_default_num_idle_processes")
    base_target = pool.__dict__.pop("_target_idle_processes")
    pool.__class__ = DemandPool
    assert isinstance(pool, DemandPool)
    pool._demand = demand
    pool._base_default, pool._base_target = base_default, base_target
    pool._clock, pool._launches = clock, deque()
    pool.on("process_job_launched", pool._launched)
    return pool


def idle_count(pool: ProcPool) -> int:
    return pool._warmed_proc_queue.qsize()


def trim(pool: DemandPool) -> int:
    """Close warm processes above the target when no job waits for one; how many closed."""
    if pool._demand() > 0 or pool._jobs_waiting_for_process or pool._spawn_tasks:
        return 0
    # Back to num_idle_processes, not below: livekit-agents' lowered target (CPU load) only
    # stops new spawns, it never closes warm processes, and neither do we.
    target = pool._base_default
    closed = 0
    while pool._warmed_proc_queue.qsize() > target:
        proc = pool._warmed_proc_queue.get_nowait()
        task = asyncio.ensure_future(proc.aclose())
        pool._close_tasks.add(task)
        task.add_done_callback(pool._close_tasks.discard)
        closed += 1
    return closed
