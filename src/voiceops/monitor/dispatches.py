"""The life of every proxy dispatch in the monitor, and the only writer of dispatch metrics.

Events in (the monitor routes them here; heartbeat probes never come):

* ``dispatch_created`` / ``dispatch_failed`` (proxy) → ``voiceops_dispatch_requests_total
  {outcome}``, ``voiceops_dispatch_latency_seconds``; a new dispatch is tracked by the
  :class:`~voiceops.monitor.correlate.Correlator` with a deadline, and worker events that
  beat it here (LiveKit asks the worker while it still answers the proxy) are replayed.
* ``job_request`` (worker) → ``voiceops_dispatch_job_request_seconds``; resolves
  ``DispatchUnanswered``.
* ``agent_joined`` (worker, or the proxy's webhook) → ``voiceops_time_to_join_seconds``,
  counted once and only for the dispatch its job belongs to.
* ``job_ended`` before the join, a worker's death, or no join by ``join_timeout_s`` →
  ``DispatchUnanswered`` (``reason`` no_join / worker_died) with a diagnosis.
* No ``job_request`` by the deadline → ListDispatch (another host's worker may have taken
  it) → ``voiceops_dispatch_unanswered_total{source="proxy"}`` + ``DispatchUnanswered``;
  with ``monitor.redispatch_unanswered`` the dispatch is re-created once.
* Heartbeat outcomes (:meth:`Dispatches.probe_observed`) feed the same histograms and
  ``{source="heartbeat"}``.

Collaborators are explicit: ``alerts`` (fire/resolve: the alert book and its sinks), ``livekit``
(the LiveKit AgentDispatch service, looked up when needed), ``facts`` (the evidence behind a
diagnosis), ``wait_pool_ready`` and the clock. :meth:`Dispatches.run` owns every task it starts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from livekit import api

from voiceops.events import (
    AgentJoined,
    DispatchCreated,
    DispatchFailed,
    Event,
    JobEnded,
    JobRequest,
)
from voiceops.metrics import DISPATCH_OUTCOMES, Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor import diagnose
from voiceops.monitor.calls import CallBook, Held, death_text
from voiceops.monitor.correlate import CorrelateOptions, Correlator, Phase, Tracked, Verdict
from voiceops.monitor.early import EarlyEvents
from voiceops.monitor.heartbeat import ProbeOutcome, ProbeResult
from voiceops.supervisor.policy import ExitReason

logger = logging.getLogger("voiceops.monitor.dispatches")
HEARTBEAT_SOURCE: Final = "heartbeat"  # dispatch events of probes: their own metric
JOB_KEY: Final = "job:"  # joins held until their job is tied to a dispatch
JOIN_FAILURES: Final = frozenset({"connect_failed", "failed"})  # job_ended outcomes before a join

Facts = Callable[..., Awaitable[diagnose.Facts]]  # (joins_missing=, listing=)


class DispatchService(Protocol):
    """The part of LiveKit's AgentDispatchService used here (a fake in unit tests)."""

    async def list_dispatch(self, room_name: str) -> list[api.AgentDispatch]: ...
    async def delete_dispatch(self, dispatch_id: str, room_name: str) -> api.AgentDispatch: ...
    async def create_dispatch(self, req: api.CreateAgentDispatchRequest) -> api.AgentDispatch: ...


@dataclass(frozen=True)
class DispatchOptions:
    correlate: CorrelateOptions = field(default_factory=CorrelateOptions)
    confirm_concurrency: int = 32  # ListDispatch calls in flight at once
    livekit_timeout_s: float = 5.0
    redispatch_wait_s: float = 60.0  # for a ready worker before re-dispatching a dead one's


def _seconds_ok(value: float) -> bool:
    return math.isfinite(value) and value >= 0


class Dispatches:
    def __init__(self, metrics: Metrics, options: DispatchOptions, *, alerts: A.Alerting,
                 livekit: Callable[[], DispatchService], facts: Facts,
                 wait_pool_ready: Callable[[float], Awaitable[None]],
                 clock: Callable[[], float]) -> None:
        self._m = metrics
        self._agent = metrics.agent_name
        self.opts = options
        self._fire, self._resolve, self._livekit = alerts.fire, alerts.resolve, livekit
        self._facts, self._wait_pool_ready, self._clock = facts, wait_pool_ready, clock
        self.correlator = Correlator(options.correlate, clock)
        self.early = EarlyEvents(clock)
        self.calls = CallBook(clock, join_timeout_s=options.correlate.join_timeout_s)
        self._sem = asyncio.Semaphore(options.confirm_concurrency)
        self._tg: asyncio.TaskGroup | None = None
        self._last_join_ok = float("-inf")
        self._last_join_missing = float("-inf")

    # ---- events in ---------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """One event of a proxy dispatch or its job; anything else is ignored."""
        if isinstance(event, DispatchCreated):
            self._created(event)
        elif isinstance(event, DispatchFailed):
            self._failed(event)
        elif isinstance(event, JobRequest):
            self._job_request(event)
        elif isinstance(event, AgentJoined):
            self._agent_joined(event)
        elif isinstance(event, JobEnded):
            self._job_ended(event)

    def _created(self, ev: DispatchCreated) -> None:
        if ev.source == HEARTBEAT_SOURCE:
            return
        self._m.dispatch_requests.labels(self._agent, "reused" if ev.reused else "ok").inc()
        if _seconds_ok(ev.latency_s):
            self._m.dispatch_latency.labels(self._agent).observe(ev.latency_s)
        if not ev.reused and self.correlator.dispatched(ev.dispatch_id, ev.room, ev.agent_name):
            for early in self.early.take(ev.dispatch_id):
                self.on_event(early)  # the worker was faster than LiveKit's answer

    def _failed(self, ev: DispatchFailed) -> None:
        if ev.source == HEARTBEAT_SOURCE:
            return
        if ev.reason not in DISPATCH_OUTCOMES or ev.reason in ("ok", "reused"):
            logger.debug("event_dropped type=dispatch_failed value=%.40r", ev.reason)
            self._m.events_dropped.inc()
            return
        self._m.dispatch_requests.labels(self._agent, ev.reason).inc()

    def _job_request(self, ev: JobRequest) -> None:
        if ev.decision == "accepted" and not ev.probe:
            self.calls.accepted(ev.process, ev.job_id, ev.dispatch_id, ev.room)
        if ev.dispatch_id and self.correlator.get(ev.dispatch_id) is None:
            self.early.hold(ev.dispatch_id, ev)
            return
        seconds = self.correlator.job_request(ev.dispatch_id, ev.job_id, ev.room)
        if seconds is not None:
            self._m.dispatch_job_request.labels(self._agent).observe(seconds)
            self._resolve(A.DISPATCH_UNANSWERED)
        self._jobs_known((ev.job_id,))

    def _jobs_known(self, job_ids: tuple[str, ...]) -> None:
        """These jobs are now tied to their dispatch: count the joins that waited for them."""
        for job_id in job_ids:
            for held in self.early.take(JOB_KEY + job_id):
                self.on_event(held)

    def _agent_joined(self, ev: AgentJoined) -> None:
        if ev.source == "worker":
            self.calls.joined(ev.job_id)
        if ev.dispatch_id and self.correlator.get(ev.dispatch_id) is None:
            self.early.hold(ev.dispatch_id, ev)
            return
        job_id = ev.job_id or ev.identity.removeprefix("agent-")
        if not self.correlator.knows_job(job_id):
            if job_id:  # no JobRequest for it yet: counted once its job is tied to a dispatch
                self.early.hold(JOB_KEY + job_id, ev)
            return
        found = self.correlator.agent_joined(job_id=job_id, dispatch_id=ev.dispatch_id,
                                             room=ev.room, identity=ev.identity)
        if found is not None:
            self._m.time_to_join.labels(self._agent).observe(found[1])
            self._last_join_ok = self._clock()
            self._resolve(A.DISPATCH_UNANSWERED)  # an agent got in: the path works again

    def _job_ended(self, ev: JobEnded) -> None:
        """A job that ended before its agent joined (connect failed, entrypoint crashed)."""
        self.calls.ended(ev.job_id)
        if ev.reason and ev.outcome != "cut":  # a named failure, e.g. no Letta agent for the call
            logger.warning("job_failed job_id=%s dispatch_id=%s reason=%s", ev.job_id,
                           ev.dispatch_id, ev.reason)
        if ev.outcome not in JOIN_FAILURES or self._tg is None:
            return
        entry = self.correlator.join_failed(ev.dispatch_id) if ev.dispatch_id else None
        if entry is not None:
            self._spawn(self._join_missing(
                entry.dispatch_id, entry.room,
                f"its job {ev.job_id or '?'} on {ev.process or 'a worker'} ended "
                f"'{ev.outcome}' before joining"), "join missing")

    def process_died(self, name: str, reason: ExitReason) -> Held | None:
        """``name`` exited: the jobs it held (None when it held none, or stopped as asked).
        Its joining dispatches will not be answered: alerted, re-dispatched if enabled."""
        held = self.calls.take(name)
        if not held or (reason.requested and reason.kind != "drain_timeout"):
            return None
        text = death_text(name, reason.kind, reason.returncode, held)
        # The death text (process, signal, counts) as it was: tests/e2e/test_worker_death pins it.
        logger.error("worker_died_with_jobs: %s", text)
        entries = [e for c in held.joining if (e := self.correlator.join_failed(c.dispatch_id))]
        if entries:
            self._spawn(self._worker_died(entries, text), "worker died")
        return held

    def probe_observed(self, outcome: ProbeOutcome) -> None:
        """A heartbeat probe's figures go into the same histograms as proxy dispatches."""
        if outcome.job_request_s is not None:
            self._m.dispatch_job_request.labels(self._agent).observe(outcome.job_request_s)
        if outcome.join_s is not None:
            self._m.time_to_join.labels(self._agent).observe(outcome.join_s)
        if outcome.result is ProbeResult.OK:
            self._resolve(A.DISPATCH_UNANSWERED)  # the path works again
        elif outcome.result is ProbeResult.NO_JOB_REQUEST:
            self._m.dispatch_unanswered.labels(self._agent, HEARTBEAT_SOURCE).inc()

    def timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        """Where a tracked dispatch is: JobRequest and join times after its creation."""
        entry = self.correlator.get(dispatch_id)
        return None if entry is None else entry.timeline()

    def joins_missing_recently(self) -> bool:
        """The last dispatch that got a JobRequest got no agent (the media path is suspect)."""
        return self._last_join_missing > self._last_join_ok

    # ---- tasks -------------------------------------------------------------------------

    async def run(self, tick_s: float) -> None:
        """Own the confirmation and alert tasks; one correlation step every ``tick_s``."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                while True:
                    started = self._clock()
                    try:
                        self.tick()
                    except Exception:
                        logger.exception("dispatch_tick_failed")
                    await asyncio.sleep(max(0.0, started + tick_s - self._clock()))
            finally:
                self._tg = None

    @property
    def running(self) -> bool:
        return self._tg is not None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._tg is None:
            coro.close()  # not running (never started, or stopping): nobody would await it
            return
        self._tg.create_task(coro, name=name)

    def tick(self) -> None:
        """Hand overdue entries to ListDispatch confirmations; alert on joins that never came."""
        for entry in self.correlator.take_due():
            self._spawn(self._confirm(entry), "confirm")
        for gone in self.correlator.sweep():
            if gone.phase is Phase.REQUESTED:
                self._spawn(self._join_missing(
                    gone.dispatch_id, gone.room,
                    f"no agent joined within {self.opts.correlate.join_timeout_s:g} s"),
                    "join missing")

    # ---- the slow side: ListDispatch, alerts, re-dispatch ------------------------------

    async def _join_missing(self, dispatch_id: str, room: str, why: str) -> None:
        """The JobRequest came but the agent never made it into the room: the browser is still
        waiting, so this dispatch ends as an alert, not silently."""
        self._last_join_missing = self._clock()
        facts = await self._facts(joins_missing=True)
        cause = f"a worker took the JobRequest but {why}: {diagnose.dispatch_path(facts)}"
        self.correlator.diagnosed(dispatch_id, cause)
        logger.warning("dispatch_without_join dispatch_id=%s", dispatch_id)
        self._fire(A.DISPATCH_UNANSWERED, f"dispatch {dispatch_id} to room '{room}': {cause}",
                   {"room": room, "dispatch_id": dispatch_id, "reason": "no_join"})

    async def _worker_died(self, entries: list[Tracked], death: str) -> None:
        """Dispatches whose JobRequest a now-dead worker took: unanswered at once, not after
        the join timeout, and re-dispatched once when monitor.redispatch_unanswered is set."""
        for entry in entries:
            self._m.dispatch_unanswered.labels(self._agent, "proxy").inc()
            text = (f"dispatch {entry.dispatch_id} to room '{entry.room}' will not be answered: "
                    f"{death}")
            labels = {"room": entry.room, "dispatch_id": entry.dispatch_id,
                      "reason": "worker_died"}
            redispatch = self.opts.correlate.redispatch and not entry.redispatched
            logger.warning("dispatch_lost_with_worker dispatch_id=%s redispatch=%s",
                           entry.dispatch_id, redispatch)
            self._fire(A.DISPATCH_UNANSWERED, text + ("; re-dispatching once a worker is ready"
                                                      if redispatch else ""), labels)
            if redispatch:
                # LiveKit never offers a dispatch to a worker that registers after it.
                await self._wait_pool_ready(self.opts.redispatch_wait_s)
                _, dispatch = await self.listed(entry)
                new_id = await self._redispatch(entry, dispatch)
                self._fire(A.DISPATCH_UNANSWERED, text + (f"; re-dispatched once as {new_id}"
                                                          if new_id else "; re-dispatch failed"),
                           labels)

    async def _confirm(self, entry: Tracked) -> None:
        async with self._sem:
            answered, dispatch = await self.listed(entry)
        jobs = tuple(dispatch.state.jobs) if dispatch is not None else ()
        job_ids = tuple(j.id for j in jobs)
        verdict = self.correlator.confirmed(entry.dispatch_id, job_found=bool(jobs),
                                            job_ids=job_ids)
        self._jobs_known(job_ids)
        if verdict is Verdict.ANSWERED:
            logger.info("dispatch_answered_elsewhere dispatch_id=%s", entry.dispatch_id)
            self._resolve(A.DISPATCH_UNANSWERED)
        elif verdict in (Verdict.UNANSWERED, Verdict.REDISPATCH):
            listing = diagnose.Listing(entry.room, entry.dispatch_id, answered=answered,
                                       found=dispatch is not None, jobs=len(jobs))
            await self._unanswered(entry, verdict, dispatch, listing)

    async def listed(self, entry: Tracked) -> tuple[bool, api.AgentDispatch | None]:
        """(LiveKit answered, the dispatch as ListDispatch shows it or None when it is gone)."""
        try:
            async with asyncio.timeout(self.opts.livekit_timeout_s):
                dispatches = await self._livekit().list_dispatch(entry.room)
        except Exception as exc:  # cannot confirm: the dispatch counts as unanswered
            logger.info("list_dispatch_failed dispatch_id=%s error=%s", entry.dispatch_id,
                        type(exc).__name__)
            return False, None
        return True, next((d for d in dispatches if d.id == entry.dispatch_id), None)

    async def _unanswered(self, entry: Tracked, verdict: Verdict,
                          dispatch: api.AgentDispatch | None, listing: diagnose.Listing) -> None:
        self._m.dispatch_unanswered.labels(self._agent, "proxy").inc()
        text = f"no JobRequest within {self.opts.correlate.deadline_s:g} s"
        if verdict is Verdict.REDISPATCH:
            new_id = await self._redispatch(entry, dispatch)
            text += f"; re-dispatched once as {new_id}" if new_id else "; re-dispatch failed"
        facts = await self._facts(listing=listing)
        diagnosis = f"{text}: {diagnose.dispatch_path(facts)}"
        # The timeline (GET /api/dispatches/ID, the debug page) gets the same cause.
        self.correlator.diagnosed(entry.dispatch_id, diagnosis)
        logger.warning("dispatch_unanswered dispatch_id=%s verdict=%s", entry.dispatch_id, verdict)
        self._fire(A.DISPATCH_UNANSWERED, diagnosis,
                   {"room": entry.room, "dispatch_id": entry.dispatch_id})

    async def _redispatch(self, entry: Tracked, dispatch: api.AgentDispatch | None) -> str:
        """Delete and re-create the dispatch (same agent and metadata); the new id or ""."""
        metadata = dispatch.metadata if dispatch is not None else ""
        try:
            lk = self._livekit()
            async with asyncio.timeout(2 * self.opts.livekit_timeout_s):
                if dispatch is not None:
                    await lk.delete_dispatch(entry.dispatch_id, entry.room)
                new = await lk.create_dispatch(api.CreateAgentDispatchRequest(
                    agent_name=entry.agent_name, room=entry.room, metadata=metadata))
        except Exception as exc:
            logger.warning("redispatch_failed dispatch_id=%s error=%s", entry.dispatch_id,
                           type(exc).__name__)
            return ""
        logger.warning("redispatched dispatch_id=%s new_dispatch_id=%s", entry.dispatch_id, new.id)
        self.correlator.dispatched(new.id, entry.room, entry.agent_name, redispatched=True)
        return new.id
