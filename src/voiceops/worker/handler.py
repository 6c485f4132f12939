"""The request handler: reports every JobRequest to the supervisor, then answers it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from livekit.agents import JobRequest
from livekit.protocol import agent

from voiceops import events
from voiceops.worker.probe import Answer, Decision, decide, probe_mode

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
    ) -> None:
        self._agent_name = agent_name
        self._worker_id = worker_id
        self._draining = draining
        self._on_decided = on_decided
        self._emit = emit

    async def __call__(self, req: JobRequest) -> None:
        job = req.job
        probe = probe_mode(job.metadata)
        decision, answer = decide(probe, draining=self._draining())
        # Before answering: the monitor's clock stops at the JobRequest, not at our answer.
        self._report(job, probe=probe is not None, decision=decision)
        self._on_decided(job.id)
        if answer is Answer.ACCEPT:
            await req.accept(name=self._agent_name)
        else:
            # terminate=True: the server records the job as answered and offers it to nobody else.
            await req.reject(terminate=answer is Answer.DECLINE)

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
