"""Registered agent workers, their jobs, and the Go server's load rules for choosing among them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from livekit.protocol import agent, models

logger = logging.getLogger("voiceops.emulator.workers")

WorkerKey = tuple[str, str, int]  # (agent_name, namespace, job type)

# Go: agent.DefaultTargetLoad (pkg/agent/config.go), the server's `agents.target_load`.
TARGET_LOAD = 0.7
_ENDED = frozenset({agent.JS_SUCCESS, agent.JS_FAILED})


@dataclass
class JobRecord:
    """A job assigned to a worker, with the last status the worker reported."""

    job_id: str
    dispatch_id: str
    room: str
    participant_identity: str
    status: agent.JobStatus = agent.JS_RUNNING
    error: str = ""

    @property
    def ended(self) -> bool:
        return self.status in _ENDED

    def set_status(self, status: agent.JobStatus, error: str = "") -> None:
        self.status = status
        self.error = error

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "dispatch_id": self.dispatch_id,
            "room": self.room,
            "participant_identity": self.participant_identity,
            "status": agent.JobStatus.Name(self.status),
            "error": self.error,
        }


@dataclass
class Worker:
    id: str
    key: WorkerKey
    version: str
    permissions: models.ParticipantPermission
    ws: web.WebSocketResponse
    status: int = agent.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    pending: dict[str, asyncio.Future[agent.AvailabilityResponse]] = field(default_factory=dict)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # seconds from the last AvailabilityRequest to the worker's answer (None: not answered yet)
    last_answer_s: float | None = None
    answered: int = 0  # AvailabilityRequests answered in time

    @property
    def agent_name(self) -> str:
        return self.key[0]

    async def send(self, msg: agent.ServerMessage) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(msg.SerializeToString())

    def fail_pending(self) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"worker {self.id} disconnected"))
        self.pending.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_name": self.key[0],
            "namespace": self.key[1],
            "job_type": agent.JobType.Name(self.key[2]),
            "version": self.version,
            "status": agent.WorkerStatus.Name(self.status),
            "load": self.load,
            "job_count": self.job_count,
            "last_answer_s": self.last_answer_s,
            "answered": self.answered,
            "jobs": [job.to_json() for job in self.jobs.values()],
        }


def node_affinity(workers: Sequence[Worker], target_load: float = TARGET_LOAD) -> float:
    """Go's JobRequestAffinity: the sum of `target_load - load` over AVAILABLE workers.

    psrpc gives the JobRequest only to a node whose claim is > 0, so when every worker
    reports load >= target_load nobody claims it and no AvailabilityRequest is sent at all
    ("no servers available")."""
    return sum(
        max(0.0, target_load - w.load) for w in workers if w.status == agent.WS_AVAILABLE
    )


def choose_worker(candidates: Sequence[Worker], rng: random.Random) -> Worker | None:
    """Go's selectWorkerWeightedByLoad: random among WS_AVAILABLE workers, weight 1 - load.

    Only called once the node claimed the job (node_affinity > 0); then even a worker above
    the target load may be picked, with its small weight, exactly as on the Go server."""
    weighted = [(w, max(0.0, 1.0 - w.load)) for w in candidates if w.status == agent.WS_AVAILABLE]
    total = sum(weight for _, weight in weighted)
    if total <= 0:
        return None
    point = rng.random() * total
    for worker, weight in weighted:
        point -= weight
        if point < 0:
            return worker
    return weighted[-1][0]


class WorkerRegistry:
    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def add(self, worker: Worker) -> None:
        first = not any(w.key == worker.key for w in self._workers.values())
        self._workers[worker.id] = worker
        logger.info(
            "worker_registered worker_id=%s agent_name=%r first_for_name=%s",
            worker.id,
            worker.key[0],
            first,
        )

    def remove(self, worker: Worker) -> None:
        if self._workers.pop(worker.id, None) is not None:
            worker.fail_pending()
            logger.info("worker_unregistered worker_id=%s agent_name=%r", worker.id, worker.key[0])

    def for_key(self, key: WorkerKey) -> list[Worker]:
        return [w for w in self._workers.values() if w.key == key]

    def all(self) -> Iterable[Worker]:
        return list(self._workers.values())

    def find_by_identity(self, room: str, identity: str) -> tuple[Worker, JobRecord] | None:
        """The job whose agent joins `room` as `identity` (Go: Room.agentParticipants)."""
        for worker in self._workers.values():
            for job in worker.jobs.values():
                if job.room == room and job.participant_identity == identity and not job.ended:
                    return worker, job
        return None

    def find_job(self, job_id: str) -> tuple[Worker, JobRecord] | None:
        for worker in self._workers.values():
            job = worker.jobs.get(job_id)
            if job is not None:
                return worker, job
        return None

    async def close_all(self, code: int, message: bytes) -> None:
        """Close every worker socket (shutdown, or the drop_workers fault)."""
        workers = list(self._workers.values())
        await asyncio.gather(
            *(w.ws.close(code=code, message=message) for w in workers), return_exceptions=True
        )
