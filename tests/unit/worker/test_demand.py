"""Job-process pre-start sized to demand, on livekit-agents' real ProcPool (thread executors,
so no processes): the pool warms one more per accepted offer and trims back afterwards."""

from __future__ import annotations

import asyncio
import multiprocessing

from livekit.agents import JobContext, JobExecutorType, JobProcess
from livekit.agents.ipc.proc_pool import ProcPool

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


async def _until(predicate: object, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_pool_warms_to_demand_and_trims_back() -> None:
    """Three accepted offers: the pool warms BASE + 3; demand gone: trim returns it to BASE."""
    wanted = 0
    pool = demand.install(_pool(), lambda: wanted)
    await pool.start()
    try:
        await _until(lambda: demand.idle_count(pool) == BASE)
        wanted = 3
        await _until(lambda: demand.idle_count(pool) == BASE + 3)
        assert demand.trim(pool) == 0, "no trim while offers are pending"
        wanted = 0
        await _until(lambda: not pool._spawn_tasks)
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
