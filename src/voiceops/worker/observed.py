"""An AgentServer that also reports the JobRequests livekit-agents declines by itself, and that
can start as a *standby*: registered, job processes warm, but reporting itself full (and
declining any offer) until :meth:`ObservedAgentServer.activate`.

livekit-agents answers ``available=false`` without calling ``on_request`` when the worker is
at ``load_threshold`` or draining. Those JobRequests matter to the monitor (they explain
"every worker is full"), so this subclass watches the outgoing AvailabilityResponse.
It relies on two private methods of livekit-agents 1.8.9 (pinned in pyproject.toml):
``_handle_availability`` (sees the offer) and ``_queue_msg`` (sees the answer); standby adds
``_is_available`` and ``_update_worker_status`` (both consulted before every offer and status).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentServer, utils
from livekit.protocol import agent


class ObservedAgentServer(AgentServer):
    """Calls ``on_declined(job)`` for offers answered unavailable without our handler."""

    def __init__(self, *, on_declined: Callable[[agent.Job], None], standby: bool = False,
                 reported_load: Callable[[], float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reported_load = reported_load
        self._on_declined = on_declined
        self._offers: dict[str, agent.Job] = {}
        self._decided: set[str] = set()
        self.standby = standby
        self._activation: asyncio.Task[None] | None = None

    def activate(self) -> bool:
        """Leave standby: tell LiveKit at once that we take jobs. False if already active."""
        if not self.standby:
            return False
        self.standby = False
        self._activation = asyncio.ensure_future(self._update_worker_status())
        return True

    def _is_available(self) -> bool:
        return not self.standby and bool(super()._is_available())

    async def _update_worker_status(self) -> None:
        if not self.standby:
            await super()._update_worker_status()
            return
        update = agent.UpdateWorkerStatus(status=agent.WorkerStatus.WS_FULL,
                                          job_count=len(self.active_jobs))
        with contextlib.suppress(utils.aio.ChanClosed):
            await self._queue_msg(agent.WorkerMessage(update_worker=update))

    async def _answer_availability(self, msg: agent.AvailabilityRequest,
                                   **kwargs: Any) -> None:
        reserved = getattr(self, "_reserved_slots", 0)  # set by run(), before any offer
        await super()._answer_availability(msg, **kwargs)
        if getattr(self, "_reserved_slots", 0) > reserved:
            # The offer now holds a reserved slot: report the load that includes it before the
            # answer goes out, so LiveKit (random, weighted by 1 - load) leans away from this
            # worker within a burst instead of from the next periodic status on.
            await self._refresh_worker_load()
            await self._update_worker_status()

    def note_decided(self, job_id: str) -> None:
        """The request handler answered this offer (and reported it)."""
        self._decided.add(job_id)

    def _handle_availability(self, msg: agent.AvailabilityRequest) -> None:
        self._offers[msg.job.id] = msg.job
        super()._handle_availability(msg)

    async def _queue_msg(self, msg: agent.WorkerMessage) -> None:
        kind = msg.WhichOneof("message")
        if kind == "update_worker" and self._reported_load is not None:
            msg.update_worker.load = self._reported_load()
        if kind == "availability":
            job_id = msg.availability.job_id
            job = self._offers.pop(job_id, None)
            decided = job_id in self._decided
            self._decided.discard(job_id)
            if job is not None and not decided and not msg.availability.available:
                self._on_declined(job)
        await super()._queue_msg(msg)
