"""Job launching as the Go server does it: a load-gated JobRequest under psrpc's deadline,
one worker at a time, an assignment, no later retry; and job termination."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Literal

from livekit.protocol import agent, agent_dispatch, models

from .faults import FaultController
from .options import EmulatorOptions
from .tokens import AGENT_NAME_ATTRIBUTE, build_agent_token, new_id
from .workers import (
    TARGET_LOAD,
    JobRecord,
    Worker,
    WorkerRegistry,
    choose_worker,
    node_affinity,
)

logger = logging.getLogger("voiceops.emulator.dispatch")
LEFT_ROOM_ERROR = "agent worker left the room"  # Go: Worker.TerminateJob, AGENT_LEFT_ROOM
# Go: Worker.AssignJob's own timer; psrpc's 3 s request deadline normally ends the wait first.
ASSIGN_JOB_TIMEOUT_S = 10.0


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
        self._pending: dict[str, set[asyncio.Task[None]]] = {}  # dispatch id -> launches

    def launch(self, room: models.Room, dispatch: agent_dispatch.AgentDispatch) -> None:
        """Start the job for one dispatch in the background (owned task, cancelled on close)."""
        task = asyncio.create_task(self._run(room, dispatch), name=f"dispatch:{dispatch.id}")
        self._tasks.add(task)
        self._pending.setdefault(dispatch.id, set()).add(task)
        task.add_done_callback(lambda t: self._launched(dispatch.id, t))

    def _launched(self, dispatch_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        pending = self._pending.get(dispatch_id)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._pending[dispatch_id]

    async def wait_launched(self, dispatch_id: str) -> None:
        """Go's waitForPendingJobs: the dispatch's JobRequests in flight have settled."""
        pending = list(self._pending.get(dispatch_id, ()))
        if pending:
            await asyncio.wait(pending)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def terminate_job(self, job_id: str, *, left_room: bool) -> JobRecord | None:
        """Go's Worker.TerminateJob: JobTermination to the worker, and the job's end state.

        None when the job is unknown or the worker already reported an end state (Go:
        ErrJobNotFound, nothing is sent). An agent that left the room fails the job
        ("agent worker left the room"); a requested termination ends it JS_SUCCESS."""
        found = self._registry.find_job(job_id)
        if found is None or found[1].ended:
            return None
        worker, record = found
        try:
            await worker.send(agent.ServerMessage(termination=agent.JobTermination(job_id=job_id)))
        except ConnectionError:
            logger.info("worker_gone_before_termination worker_id=%s job_id=%s", worker.id, job_id)
        if left_room:
            record.set_status(agent.JS_FAILED, LEFT_ROOM_ERROR)
        else:
            record.set_status(agent.JS_SUCCESS)
        logger.info(
            "job_terminated job_id=%s status=%s error=%r",
            job_id,
            agent.JobStatus.Name(record.status),
            record.error,
        )
        return record

    async def terminate_jobs(self, dispatch: agent_dispatch.AgentDispatch) -> None:
        """A requested termination of every job of a deleted dispatch (or closed room)."""
        for job in dispatch.state.jobs:
            record = await self.terminate_job(job.id, left_room=False)
            if record is not None:
                job.state.status = record.status
                job.state.ended_at = int(self._clock() * 1e9)

    async def _run(self, room: models.Room, dispatch: agent_dispatch.AgentDispatch) -> None:
        key = (dispatch.agent_name, "", agent.JT_ROOM)
        if not self._registry.for_key(key):
            # Go: "not dispatching agent job since no worker is available"
            logger.info(
                "dispatch_without_worker agent_name=%r dispatch_id=%s",
                dispatch.agent_name,
                dispatch.id,
            )
            return
        # psrpc's request deadline runs from here: node selection, then the worker's answer.
        deadline = asyncio.get_running_loop().time() + self._options.availability_timeout_s
        swallow = self._faults.current.swallows(dispatch.agent_name)  # faults as at dispatch
        job = agent.Job(
            id=new_id("AJ_"),
            dispatch_id=dispatch.id,
            type=agent.JT_ROOM,
            room=room,
            agent_name=dispatch.agent_name,
            metadata=dispatch.metadata,
            attributes=dispatch.attributes,
        )
        if not await self._claimed(key, job):
            return
        tried: set[str] = set()
        while True:
            candidates = [w for w in self._registry.for_key(key) if w.id not in tried]
            worker = choose_worker(candidates, self._rng)
            if worker is None:
                logger.warning("job_without_worker job_id=%s agent_name=%r", job.id, key[0])
                return
            tried.add(worker.id)
            if await self._offer(worker, job, dispatch, deadline, swallow):
                return

    async def _claimed(self, key: tuple[str, str, int], job: agent.Job) -> bool:
        """psrpc's affinity round: the node claims the job only with a positive score."""
        affinity = node_affinity(self._registry.for_key(key), TARGET_LOAD)
        if affinity <= 0:
            loads = sorted(round(w.load, 2) for w in self._registry.for_key(key))
            # Go: "failed to send job request: no servers available (received 1 responses)":
            # every worker is full or reports a load at or above target_load.
            logger.warning(
                "job_request_failed reason=no_servers_available job_id=%s agent_name=%r "
                "target_load=%.1f loads=%s",
                job.id,
                key[0],
                TARGET_LOAD,
                loads,
            )
            return False
        # psrpc waits this long after the first claim for a better one (other nodes).
        await asyncio.sleep(self._options.affinity_short_circuit_s)
        return True

    async def _offer(
        self,
        worker: Worker,
        job: agent.Job,
        dispatch: agent_dispatch.AgentDispatch,
        deadline: float,
        swallow: bool,
    ) -> bool:
        """One AvailabilityRequest; True when the job is settled (assigned, terminated, lost)."""
        now_ns = int(self._clock() * 1e9)
        job.state.CopyFrom(
            agent.JobState(
                status=agent.JS_RUNNING, worker_id=worker.id, started_at=now_ns, updated_at=now_ns
            )
        )
        resp = await self._ask(worker, job, deadline, swallow)
        if resp is None:
            return True  # deadline passed: Go does not retry on another worker
        if resp is False:
            return False
        if not resp.available:
            if not resp.terminate:
                logger.info("worker_unavailable worker_id=%s job_id=%s next=try_another", worker.id,
                            job.id)
                return False
            job.state.status = agent.JS_SUCCESS
            job.state.ended_at = int(self._clock() * 1e9)
            dispatch.state.jobs.append(job)
            logger.info("job_rejected worker_id=%s job_id=%s answer=terminate", worker.id, job.id)
            return True
        await self._assign(worker, job, dispatch, resp)
        return True

    async def _ask(
        self, worker: Worker, job: agent.Job, deadline: float, swallow: bool
    ) -> agent.AvailabilityResponse | Literal[False] | None:
        """The worker's answer; None past the deadline; False when the worker vanished."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[agent.AvailabilityResponse] = loop.create_future()
        asked_at = loop.time()
        if swallow:
            logger.warning("fault_swallow_job_request job_id=%s agent_name=%r", job.id,
                           job.agent_name)
        else:
            worker.pending[job.id] = fut
            try:
                await worker.send(
                    agent.ServerMessage(availability=agent.AvailabilityRequest(job=job))
                )
            except ConnectionError:
                worker.pending.pop(job.id, None)
                return False
        timeout_s = max(0.0, min(deadline - asked_at, ASSIGN_JOB_TIMEOUT_S))
        try:
            resp = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            worker.pending.pop(job.id, None)
            # The worker did not answer in time: the job is lost (as on the Go server).
            logger.warning(
                "availability_timeout worker_id=%s job_id=%s waited_s=%.1f deadline_s=%.1f",
                worker.id,
                job.id,
                timeout_s,
                self._options.availability_timeout_s,
            )
            return None
        except ConnectionError:
            return False
        worker.last_answer_s = loop.time() - asked_at
        worker.answered += 1
        return resp

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
            logger.warning("fault_delay_assignment job_id=%s delay_s=%.1f", job.id, delay_s)
            await asyncio.sleep(delay_s)
        job.state.participant_identity = identity
        assignment = agent.JobAssignment(job=job, url="", token=token)
        try:
            await worker.send(agent.ServerMessage(assignment=assignment))
        except ConnectionError:
            logger.warning("worker_gone_before_assignment worker_id=%s job_id=%s", worker.id,
                           job.id)
            return
        worker.jobs[job.id] = JobRecord(job.id, dispatch.id, job.room.name, identity)
        dispatch.state.jobs.append(job)
        logger.info("job_assigned job_id=%s worker_id=%s", job.id, worker.id)
        if dispatch.state.deleted_at:
            # deleted (or its room closed) while the request was in flight
            await self.terminate_jobs(dispatch)
