"""Acts on the correlator: confirms overdue dispatches with ListDispatch, counts and alerts
the unanswered ones, and (``monitor.redispatch_unanswered``) re-creates a dispatch once."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from livekit import api

from voiceops.monitor import alerts as A
from voiceops.monitor import diagnose
from voiceops.monitor.correlate import Phase, Tracked, Verdict

if TYPE_CHECKING:
    from voiceops.monitor.monitor import Monitor

logger = logging.getLogger("voiceops.monitor")
REDISPATCH_WAIT_S = 60.0  # for a ready worker before re-dispatching a dead worker's dispatch


class DispatchWatch:
    def __init__(self, monitor: Monitor) -> None:
        self._m = monitor
        self._sem = asyncio.Semaphore(monitor.opts.confirm_concurrency)
        self.unanswered = 0

    async def tick(self) -> None:
        """One correlation step: hand overdue entries to confirm tasks, expire old ones."""
        m = self._m
        for entry in m.correlator.take_due():
            assert m.tg is not None
            m.tg.create_task(self._confirm(entry), name=f"confirm {entry.dispatch_id}")
        for gone in m.correlator.sweep():
            if gone.phase is Phase.REQUESTED:
                m.tg.create_task(self.join_missing(  # type: ignore[union-attr]
                    gone.dispatch_id, gone.room,
                    f"no agent joined within {m.correlator.options.join_timeout_s:g} s"))

    async def join_missing(self, dispatch_id: str, room: str, why: str) -> None:
        """The JobRequest came but the agent never made it into the room: the browser is still
        waiting, so this dispatch ends as an alert, not silently."""
        m = self._m
        m.note_join_missing()
        facts = await m.facts(joins_missing=True)
        cause = f"a worker took the JobRequest but {why}: {diagnose.dispatch_path(facts)}"
        m.correlator.diagnosed(dispatch_id, cause)
        diagnosis = f"dispatch {dispatch_id} to room '{room}': {cause}"
        logger.warning("dispatch without join: %s", diagnosis)
        m.fire(A.DISPATCH_UNANSWERED, diagnosis,
               {"room": room, "dispatch_id": dispatch_id, "reason": "no_join"})

    async def worker_died(self, entries: list[Tracked], death: str) -> None:
        """Dispatches whose JobRequest a now-dead worker took: unanswered at once, not after
        the join timeout, and re-dispatched once when monitor.redispatch_unanswered is set."""
        m = self._m
        for entry in entries:
            self.unanswered += 1
            m.metrics.dispatch_unanswered.labels(m.metrics.agent_name, "proxy").inc()
            text = (f"dispatch {entry.dispatch_id} to room '{entry.room}' will not be answered: "
                    f"{death}")
            labels = {"room": entry.room, "dispatch_id": entry.dispatch_id,
                      "reason": "worker_died"}
            redispatch = m.correlator.options.redispatch and not entry.redispatched
            logger.warning("dispatch lost with its worker: %s", text)
            m.fire(A.DISPATCH_UNANSWERED, text + ("; re-dispatching once a worker is ready"
                                                  if redispatch else ""), labels)
            if redispatch:
                # LiveKit never offers a dispatch to a worker that registers after it.
                await m.wait_pool_ready(REDISPATCH_WAIT_S)
                _, dispatch = await self._listed(entry)
                new_id = await self._redispatch(entry, dispatch)
                m.fire(A.DISPATCH_UNANSWERED, text + (f"; re-dispatched once as {new_id}"
                                                      if new_id else "; re-dispatch failed"),
                       labels)

    async def _confirm(self, entry: Tracked) -> None:
        async with self._sem:
            answered, dispatch = await self._listed(entry)
        found = dispatch is not None and bool(dispatch.state.jobs)
        job_ids = tuple(j.id for j in dispatch.state.jobs) if dispatch is not None else ()
        verdict = self._m.correlator.confirmed(entry.dispatch_id, job_found=found,
                                               job_ids=job_ids)
        self._m.jobs_known(job_ids)
        if verdict is Verdict.ANSWERED:
            logger.info("dispatch %s in room %s answered by a worker elsewhere",
                        entry.dispatch_id, entry.room)
            self._m.resolve(A.DISPATCH_UNANSWERED)
        elif verdict in (Verdict.UNANSWERED, Verdict.REDISPATCH):
            listing = diagnose.Listing(entry.room, entry.dispatch_id, answered=answered,
                                       found=dispatch is not None,
                                       jobs=len(dispatch.state.jobs) if dispatch else 0)
            await self._unanswered(entry, verdict, dispatch, listing)

    async def _listed(self, entry: Tracked) -> tuple[bool, api.AgentDispatch | None]:
        """(LiveKit answered, the dispatch as it lists it or None when it is gone)."""
        try:
            async with asyncio.timeout(self._m.opts.livekit_timeout_s):
                dispatches = await self._m.lkapi.agent_dispatch.list_dispatch(entry.room)
        except Exception as exc:  # cannot confirm: the dispatch counts as unanswered
            logger.info("ListDispatch %s failed: %r", entry.room, exc)
            return False, None
        return True, next((d for d in dispatches if d.id == entry.dispatch_id), None)

    async def _unanswered(self, entry: Tracked, verdict: Verdict,
                          dispatch: api.AgentDispatch | None,
                          listing: diagnose.Listing | None = None) -> None:
        m = self._m
        self.unanswered += 1
        m.metrics.dispatch_unanswered.labels(m.metrics.agent_name, "proxy").inc()
        text = f"no JobRequest within {m.correlator.options.deadline_s:g} s"
        if verdict is Verdict.REDISPATCH:
            new_id = await self._redispatch(entry, dispatch)
            text += (f"; re-dispatched once as {new_id}" if new_id
                     else "; re-dispatch failed")
        facts = await m.facts(listing=listing)
        diagnosis = f"{text}: {diagnose.dispatch_path(facts)}"
        # The timeline (GET /api/dispatches/ID, the debug page) gets the same cause.
        m.correlator.diagnosed(entry.dispatch_id, diagnosis)
        logger.warning("dispatch unanswered: %s", diagnosis)
        m.fire(A.DISPATCH_UNANSWERED, diagnosis,
               {"room": entry.room, "dispatch_id": entry.dispatch_id})

    async def _redispatch(self, entry: Tracked, dispatch: api.AgentDispatch | None) -> str:
        """Delete and re-create the dispatch (same agent and metadata); the new id or ""."""
        lk = self._m.lkapi
        metadata = dispatch.metadata if dispatch is not None else ""
        try:
            async with asyncio.timeout(2 * self._m.opts.livekit_timeout_s):
                if dispatch is not None:
                    await lk.agent_dispatch.delete_dispatch(entry.dispatch_id, entry.room)
                new = await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                    agent_name=entry.agent_name, room=entry.room, metadata=metadata))
        except Exception as exc:
            logger.warning("re-dispatch of %s in room %s failed: %r", entry.dispatch_id,
                           entry.room, exc)
            return ""
        logger.warning("re-dispatched unanswered dispatch %s in room %s as %s",
                       entry.dispatch_id, entry.room, new.id)
        self._m.correlator.dispatched(new.id, entry.room, entry.agent_name, redispatched=True)
        return new.id
