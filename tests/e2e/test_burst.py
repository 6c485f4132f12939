"""Bursts under the real supervisor: jobs spread over the workers, and the job-process pool
pre-started for the burst shrinks back to ``workers.num_idle_processes`` afterwards."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from livekit import api
from stack import AGENT, Stack, stack_config

from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.livekit]
BURST = 10
IDLE = 1


def children(stack: Stack) -> list[int]:
    """Descendants (forkserver + job processes) of each worker."""
    return [len(psutil.Process(w["pid"]).children(recursive=True))
            for w in stack.sup.procs("worker")]


def warm(stack: Stack) -> list[int] | None:
    counts = children(stack)
    # Both workers alike (forkserver + IDLE warm job processes): nothing is still starting.
    return counts if len(counts) == 2 and counts[0] == counts[1] > IDLE else None


def dispatch_burst(lk: Any, prefix: str) -> None:
    async def go() -> None:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
            await asyncio.gather(*(client.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT, room=f"{prefix}-{i}"))
                for i in range(BURST)))
    asyncio.run(go())


def jobs_by_worker(lk: Any, prefix: str) -> Counter[str]:
    return Counter(job["state"].get("worker_id") for d in lk.state()["dispatches"]
                   if d["room"].startswith(prefix) for job in d["jobs"]
                   if job["state"].get("status") in ("JS_RUNNING", "JS_SUCCESS"))


def test_burst_spreads_and_the_pool_refills(livekit_server: Any, tmp_path: Path) -> None:
    """10 concurrent dispatches: both workers take jobs; then each worker's job processes
    return to the idle target (the ones pre-started for the burst are closed again)."""
    sections = stack_config(tmp_path, livekit_server, workers=2, workers__num_idle_processes=IDLE,
                            workers__entrypoint="voiceops.agent.basic:entrypoint")
    stack = Stack.start(tmp_path, sections, livekit_server)
    try:
        idle = wait_for(lambda: warm(stack), 60, "warm job processes (and the forkserver)")
        dispatch_burst(livekit_server, "burst")
        spread = wait_for(lambda: c if sum((c := jobs_by_worker(livekit_server, "burst"))
                                           .values()) == BURST else None, 60, "every job running")
        # LiveKit's choice is random (weighted by 1 - load): how even is for bench/, not here.
        assert len(spread) == 2, spread
        last: list[list[int]] = []
        try:
            wait_for(lambda: last.append(children(stack)) or last[-1] == idle, 90,
                     f"each worker back at its idle job processes {idle}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {last[-1:]}") from None
    finally:
        stack.close()


def test_an_offer_passed_on_is_taken_by_the_other_worker(livekit_server: Any,
                                                         tmp_path: Path) -> None:
    """workers.spread_jobs, end to end: dispatches one after another until a worker holding more
    jobs passes an offer on (LiveKit picks at random, so within 16 one is); LiveKit then offers
    that job to the other worker, which takes it, and the job runs. With spread_jobs off no
    offer is ever passed and this fails."""
    sections = stack_config(tmp_path, livekit_server, workers=2, workers__num_idle_processes=IDLE,
                            workers__entrypoint="voiceops.agent.basic:entrypoint")
    # Every agent stays for the whole test: the workers balance the jobs they hold now.
    stack = Stack.start(tmp_path, sections, livekit_server,
                        env={"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "60"})
    try:
        wait_for(lambda: warm(stack), 60, "warm job processes (and the forkserver)")

        def passed() -> str | None:
            found = re.search(r"job_passed job_id=(\S+)", stack.sup.stdout_path.read_text(
                encoding="utf-8", errors="replace"))
            return found.group(1) if found else None

        async def until_passed() -> str | None:
            async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                                      livekit_server.api_secret) as client:
                for i in range(16):
                    await client.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(agent_name=AGENT, room=f"pass-{i}"))
                    await asyncio.to_thread(
                        wait_for, lambda n=i + 1: sum(
                            jobs_by_worker(livekit_server, "pass-").values()) == n or None,
                        30, f"job {i + 1} running")
                    if (job := passed()) is not None:
                        return job
            return None

        job_id = asyncio.run(until_passed())
        assert job_id is not None, "no offer was passed on in 16 dispatches"
        out = stack.sup.stdout_path.read_text(encoding="utf-8", errors="replace")
        answers = dict(re.findall(
            rf"\[(worker-\d+) stderr\].*job_request job_id={job_id} \S+ decision=(\w+)", out))
        assert sorted(answers.values()) == ["accepted", "rejected"], answers  # two workers
        running = [job for d in livekit_server.state()["dispatches"] for job in d["jobs"]
                   if job["id"] == job_id]
        assert [j["state"]["status"] for j in running] == ["JS_RUNNING"], running
    finally:
        stack.close()
