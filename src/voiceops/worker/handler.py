"""The request handler: reports every JobRequest to the supervisor, then answers it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from livekit.agents import JobRequest
from livekit.protocol import agent

from voiceops import events
from voiceops.worker.probe import Answer, Decision, ProbeMode, decide, probe_mode

logger = logging.getLogger("voiceops.worker")


class RequestHandler:
    """``on_request`` of the AgentServer: emit ``job_request`` first, then accept or decline."""

    def __init__(
        self,
        *,
        agent_name: str,
        worker_id: Callable[[], str],
        draining: Callable[[], bool],
        on_decided: Callable[[str], None] = lambda job_id: None,
        emit: Callable[[events.Event], bool] = events.emit,
        passes: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._agent_name = agent_name
        self._worker_id = worker_id
        self._draining = draining
        self._on_decided = on_decided
        self._emit = emit
        self._passes = passes  # a peer should take this job (see .fleet)
        self._deciding = 0  # offers in this handler, not yet answered
        self._accepted = 0  # offers accepted whose job is not launched yet

    @property
    def offers_held(self) -> int:
        """Offers this worker may still run: being decided, or accepted and not yet launched
        (not those passed on or declined)."""
        return self._deciding + self._accepted

    @property
    def launching(self) -> int:
        """Offers accepted whose job is not launched yet: each wants a warm job process. Probes
        and offers passed on or declined never count, so they start no process."""
        return self._accepted

    async def __call__(self, req: JobRequest) -> None:
        probe = probe_mode(req.job.metadata)
        self._deciding += 1
        try:
            decision, answer = await self._decide(req.job, probe)
        finally:
            self._deciding -= 1
        if answer is Answer.ACCEPT:
            self._accepted += 1
        # Before answering: the monitor's clock stops at the JobRequest, not at our answer.
        self._report(req.job, probe=probe is not None, decision=decision)
        self._on_decided(req.job.id)
        if answer is Answer.ACCEPT:
            try:
                await req.accept(name=self._agent_name)  # returns once the job is launched
            finally:
                self._accepted -= 1
        else:
            # terminate=True: the server records the job as answered and offers it to nobody else.
            await req.reject(terminate=answer is Answer.DECLINE)

    async def _decide(self, job: agent.Job, probe: ProbeMode | None
                      ) -> tuple[Decision, Answer]:
        decision, answer = decide(probe, draining=self._draining())
        if answer is Answer.ACCEPT and probe is None and self._passes is not None \
                and await self._passes(job.id):
            # LiveKit offers it to a worker it has not tried: a peer with fewer jobs.
            logger.info("job_passed job_id=%s dispatch_id=%s", job.id, job.dispatch_id)
            return Decision.REJECTED, Answer.REJECT
        return decision, answer

    def declined(self, job: agent.Job) -> None:
        """livekit-agents answered "unavailable" itself (at load_threshold, or draining)."""
        self._report(job, probe=probe_mode(job.metadata) is not None, decision=Decision.REJECTED)

    def _report(self, job: agent.Job, *, probe: bool, decision: Decision) -> None:
        self._emit(events.JobRequest(
            job_id=job.id, dispatch_id=job.dispatch_id, room=job.room.name,
            agent_name=job.agent_name or self._agent_name, probe=probe,
            decision=decision.value, worker_id=self._worker_id(),
        ))
        logger.info("job_request job_id=%s dispatch_id=%s decision=%s", job.id, job.dispatch_id,
                    decision.value)
