"""An AgentServer that also reports the JobRequests livekit-agents declines by itself.

livekit-agents answers ``available=false`` without calling ``on_request`` when the worker is
at ``load_threshold`` or draining. Those JobRequests matter to the monitor (they explain
"every worker is full"), so this subclass watches the outgoing AvailabilityResponse.
It relies on two private methods of livekit-agents 1.8.9 (pinned in pyproject.toml):
``_handle_availability`` (sees the offer) and ``_queue_msg`` (sees the answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.agents import AgentServer
from livekit.protocol import agent


class ObservedAgentServer(AgentServer):
    """Calls ``on_declined(job)`` for offers answered unavailable without our handler."""

    def __init__(self, *, on_declined: Callable[[agent.Job], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_declined = on_declined
        self._offers: dict[str, agent.Job] = {}
        self._decided: set[str] = set()

    def note_decided(self, job_id: str) -> None:
        """The request handler answered this offer (and reported it)."""
        self._decided.add(job_id)

    def _handle_availability(self, msg: agent.AvailabilityRequest) -> None:
        self._offers[msg.job.id] = msg.job
        super()._handle_availability(msg)

    async def _queue_msg(self, msg: agent.WorkerMessage) -> None:
        if msg.WhichOneof("message") == "availability":
            job_id = msg.availability.job_id
            job = self._offers.pop(job_id, None)
            decided = job_id in self._decided
            self._decided.discard(job_id)
            if job is not None and not decided and not msg.availability.available:
                self._on_declined(job)
        await super()._queue_msg(msg)
