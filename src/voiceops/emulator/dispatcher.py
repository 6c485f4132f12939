"""Job launching modelled on the Go server: JobRequest to one worker, assignment, no later retry."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from livekit.protocol import agent, agent_dispatch, models

from .faults import FaultController
from .options import EmulatorOptions
from .tokens import AGENT_NAME_ATTRIBUTE, build_agent_token, new_id
from .workers import JobRecord, Worker, WorkerRegistry, choose_worker

logger = logging.getLogger("voiceops.emulator.dispatch")


class Dispatcher:
    def __init__(
        self,
        options: EmulatorOptions,
        registry: WorkerRegistry,
        faults: FaultController,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._options = options
        self._registry = registry
        self._faults = faults
        self._rng = rng
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def launch(self, room: models.Room, dispatch: agent_dispatch.AgentDispatch) -> None:
        """Start the job for one dispatch in the background (owned task, cancelled on close)."""
        task = asyncio.create_task(self._run(room, dispatch), name=f"dispatch:{dispatch.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def terminate_jobs(self, dispatch: agent_dispatch.AgentDispatch) -> None:
        """JobTermination to the worker of every job of a deleted dispatch."""
        for job in dispatch.state.jobs:
            found = self._registry.find_job(job.id)
            if found is None:
                continue
            worker, _ = found
            try:
                await worker.send(
                    agent.ServerMessage(termination=agent.JobTermination(job_id=job.id))
                )
            except ConnectionError:
                logger.info("worker %s gone before termination of %s", worker.id, job.id)

    async def _run(self, room: models.Room, dispatch: agent_dispatch.AgentDispatch) -> None:
        key = (dispatch.agent_name, "", agent.JT_ROOM)
        if not self._registry.for_key(key):
            logger.info(
                "not dispatching agent job since no worker is available: agent_name=%r room=%s "
                "dispatch_id=%s",
                dispatch.agent_name,
                room.name,
                dispatch.id,
            )
            return
        job = agent.Job(
            id=new_id("AJ_"),
            dispatch_id=dispatch.id,
            type=agent.JT_ROOM,
            room=room,
            agent_name=dispatch.agent_name,
            metadata=dispatch.metadata,
            attributes=dispatch.attributes,
        )
        tried: set[str] = set()
        while True:
            candidates = [w for w in self._registry.for_key(key) if w.id not in tried]
            worker = choose_worker(candidates, self._rng)
            if worker is None:
                logger.warning("no workers available for job %s (agent_name=%r)", job.id, key[0])
                return
            tried.add(worker.id)
            if await self._offer(worker, job, dispatch):
                return

    async def _offer(
        self, worker: Worker, job: agent.Job, dispatch: agent_dispatch.AgentDispatch
    ) -> bool:
        """One AvailabilityRequest; True when the job is settled (assigned, terminated, lost)."""
        now_ns = int(self._clock() * 1e9)
        job.state.CopyFrom(
            agent.JobState(
                status=agent.JS_RUNNING, worker_id=worker.id, started_at=now_ns, updated_at=now_ns
            )
        )
        resp = await self._ask(worker, job)
        if resp is None:
            return True  # availability timeout: Go does not retry on another worker
        if resp is False:
            return False
        if not resp.available:
            if not resp.terminate:
                logger.info("worker %s unavailable for job %s, trying next", worker.id, job.id)
                return False
            job.state.status = agent.JS_SUCCESS
            job.state.ended_at = int(self._clock() * 1e9)
            dispatch.state.jobs.append(job)
            logger.info("worker %s rejected job %s with terminate", worker.id, job.id)
            return True
        await self._assign(worker, job, dispatch, resp)
        return True

    async def _ask(
        self, worker: Worker, job: agent.Job
    ) -> agent.AvailabilityResponse | None | bool:
        """The worker's answer; None on timeout; False when the worker vanished mid-request."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[agent.AvailabilityResponse] = loop.create_future()
        timeout_s = self._options.availability_timeout_s
        if self._faults.current.swallows(job.agent_name):
            logger.warning("fault: swallowing JobRequest %s for %r", job.id, job.agent_name)
        else:
            worker.pending[job.id] = fut
            try:
                await worker.send(
                    agent.ServerMessage(availability=agent.AvailabilityRequest(job=job))
                )
            except ConnectionError:
                worker.pending.pop(job.id, None)
                return False
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            worker.pending.pop(job.id, None)
            logger.warning(
                "availability timeout: worker %s did not answer job %s within %.1fs",
                worker.id,
                job.id,
                timeout_s,
            )
            return None
        except ConnectionError:
            return False

    async def _assign(
        self,
        worker: Worker,
        job: agent.Job,
        dispatch: agent_dispatch.AgentDispatch,
        resp: agent.AvailabilityResponse,
    ) -> None:
        identity = resp.participant_identity or f"agent-{job.id}"
        attributes = dict(resp.participant_attributes)
        attributes[AGENT_NAME_ATTRIBUTE] = job.agent_name
        token = build_agent_token(
            api_key=self._options.api_key,
            api_secret=self._options.api_secret,
            room=job.room.name,
            identity=identity,
            name=resp.participant_name,
            metadata=resp.participant_metadata,
            attributes=attributes,
            permissions=worker.permissions,
            ttl_s=self._options.agent_token_ttl_s,
        )
        delay_s = self._faults.current.assignment_delay_s
        if delay_s > 0:
            logger.warning("fault: delaying assignment of %s by %.1fs", job.id, delay_s)
            await asyncio.sleep(delay_s)
        job.state.participant_identity = identity
        assignment = agent.JobAssignment(job=job, url="", token=token)
        try:
            await worker.send(agent.ServerMessage(assignment=assignment))
        except ConnectionError:
            logger.warning("worker %s gone before assignment of %s", worker.id, job.id)
            return
        worker.jobs[job.id] = JobRecord(job.id, dispatch.id, job.room.name, identity)
        dispatch.state.jobs.append(job)
        logger.info("assigned job %s to worker %s as %s", job.id, worker.id, identity)
        if dispatch.state.deleted_at:
            # deleted (or its room closed) while the request was in flight
            await self.terminate_jobs(dispatch)
