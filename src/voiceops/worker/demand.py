"""Job-process pre-start sized to demand: the pool keeps ``num_idle_processes`` warm plus one
per JobRequest this worker has accepted and not yet launched.

livekit-agents' ``ProcPool`` warms a new process only once a job is assigned and finds the
queue empty, so under a burst every job past the warm ones waits a whole process start after
its assignment. Counting accepted offers (``AgentServer._reserved_slots``, livekit-agents
1.8.9, pinned) starts those processes during the offer/assignment round trip instead. After the
burst, :func:`trim` closes warm processes above the target, so memory returns to what
``num_idle_processes`` promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit.agents.ipc.proc_pool import ProcPool


class DemandPool(ProcPool):
    """A ProcPool whose idle target is the configured one plus ``demand()``.

    Installed on the live pool by :func:`install` (``__class__`` swap: the pool is built inside
    ``AgentServer.run``). The two targets livekit-agents reads are properties here; what it
    writes to them (its load task lowers the target under CPU load) stays the base."""

    _demand: Callable[[], int]
    _base_default: int
    _base_target: int

    @property
    def _default_num_idle_processes(self) -> int:
        return self._base_default + max(0, self._demand())

    @_default_num_idle_processes.setter
    def _default_num_idle_processes(self, value: int) -> None:
        self._base_default = value

    @property
    def _target_idle_processes(self) -> int:
        return self._base_target + max(0, self._demand())

    @_target_idle_processes.setter
    def _target_idle_processes(self, value: int) -> None:
        self._base_target = value


def install(pool: ProcPool, demand: Callable[[], int]) -> DemandPool:
    """Make ``pool`` size its warm processes to ``num_idle_processes + demand()``."""
    base_default = pool.__dict__.pop("_default_num_idle_processes")
    base_target = pool.__dict__.pop("_target_idle_processes")
    pool.__class__ = DemandPool
    assert isinstance(pool, DemandPool)
    pool._demand = demand
    pool._base_default, pool._base_target = base_default, base_target
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
