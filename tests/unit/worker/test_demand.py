"""Job-process pre-start sized to demand, on livekit-agents' real ProcPool (thread executors,
so no processes): the pool warms one more per accepted offer and trims back afterwards; a
burst's launches defer the reserve's refill until the burst is over."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from livekit.agents import JobContext, JobExecutorType, JobProcess
from livekit.agents.ipc.proc_pool import ProcPool

from voiceops.testing.waiting import wait_for_async
from voiceops.worker import demand

BASE = 1


async def _entry(ctx: JobContext) -> None:  # never called: no job is launched here
    raise AssertionError("no job in this test")


def _pool() -> ProcPool:
    def setup(proc: JobProcess) -> None:
        return None

    return ProcPool(
        initialize_process_fnc=setup, job_entrypoint_fnc=_entry, session_end_fnc=None,
        simulation_end_fnc=None, num_idle_processes=BASE, initialize_timeout=30,
        close_timeout=5, session_end_timeout=5, inference_executor=None,
        job_executor_type=JobExecutorType.THREAD, mp_ctx=multiprocessing.get_context("spawn"),
        memory_warn_mb=0, memory_limit_mb=0, http_proxy=None, loop=asyncio.get_running_loop())


async def test_pool_warms_to_demand_and_trims_back() -> None:
    """Three accepted offers: the pool warms BASE + 3; demand gone: trim returns it to BASE."""
    wanted = 0
    pool = demand.install(_pool(), lambda: wanted)
    await pool.start()
    try:
        await wait_for_async(lambda: demand.idle_count(pool) == BASE, 30.0, "the pool at BASE",
                             0.02)
        wanted = 3
        await wait_for_async(lambda: demand.idle_count(pool) == BASE + 3, 30.0,
                             "the pool at BASE + 3", 0.02)
        assert demand.trim(pool) == 0, "no trim while offers are pending"
        wanted = 0
        await wait_for_async(lambda: not pool._spawn_tasks, 30.0, "no spawn left", 0.02)
        assert demand.trim(pool) == 3
        assert demand.idle_count(pool) == BASE
    finally:
        await pool.aclose()


async def test_livekit_lowering_the_target_keeps_the_demand() -> None:
    """livekit-agents' load task writes the targets; what it writes is the base, demand is added."""
    pool = demand.install(_pool(), lambda: 2)
    pool.set_target_idle_processes(0)
    assert pool.target_idle_processes == 2
    assert pool._default_num_idle_processes == BASE + 2


@pytest.mark.parametrize(("base", "pending", "recent", "wanted"), [
    (2, 0, 0, 2),    # idle: the reserve
    (2, 3, 0, 5),    # offers accepted, nothing launched yet: reserve plus one each
    (2, 0, 2, 2),    # steady traffic within the reserve: refilled at once, as before
    (2, 0, 3, 0),    # a burst just launched: the reserve waits until it is over
    (2, 4, 3, 4),    # ... but accepted offers still get their processes
    (0, -1, 0, 0),   # a negative demand counts as none
])
def test_idle_target(base: int, pending: int, recent: int, wanted: int) -> None:
    """Warm processes wanted for a reserve, accepted offers and recent launches."""
    assert demand.idle_target(base, pending, recent) == wanted


async def test_reserve_refill_waits_for_the_burst_window() -> None:
    """More launches than the reserve within the window stop the reserve's refill (the pool's
    own ``process_job_launched`` events count them); once the window passes, it is wanted."""
    now = [100.0]
    pool = demand.install(_pool(), lambda: 0, clock=lambda: now[0])
    assert pool._default_num_idle_processes == BASE
    for _ in range(BASE + 1):
        pool.emit("process_job_launched", None)
    assert pool._default_num_idle_processes == 0 and pool.target_idle_processes == 0
    now[0] += demand.BURST_WINDOW_S + 0.1
    assert pool._default_num_idle_processes == BASE


async def test_top_up_starts_the_wanted_processes_at_once() -> None:
    """An offer's process starts when the offer arrives, not on the pool's next 0.1 s look:
    right after demand rises, top_up has the missing processes spawning, and only those."""
    wanted = 0
    pool = demand.install(_pool(), lambda: wanted)
    assert pool.top_up() == 0, "nothing before the pool runs"
    await pool.start()
    try:
        await wait_for_async(lambda: demand.idle_count(pool) == BASE and not pool._spawn_tasks,
                             30.0, "the pool at BASE", 0.02)
        wanted = 3
        assert pool.top_up() == 3
        assert len(pool._spawn_tasks) == 3
        assert pool.top_up() == 0, "already spawning: none twice"
        await wait_for_async(lambda: demand.idle_count(pool) == BASE + 3, 30.0,
                             "the pool at BASE + 3", 0.02)
    finally:
        await pool.aclose()
