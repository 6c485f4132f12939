"""Heartbeat probes: a dispatch to a throw-away room that a worker must answer.

One probe: CreateDispatch(agent.name, ``voiceops-probe-<host>-<n>``, metadata
``{"voiceops_probe": true, "mode": …}``) → the worker reports the JobRequest (probe=True) and,
in ``request`` mode, declines → ``ok`` within ``heartbeat.timeout_s``; in ``join`` mode the
agent must also join the room. No JobRequest: ListDispatch decides (a job there means a
worker elsewhere answered → ``ok``), else ``no_job_request``. A CreateDispatch error is
``dispatch_error``. The room is deleted afterwards in every case.

Policy (:func:`next_state`) is pure: two failed probes in a row fire HeartbeatFailed, the
next success resolves it.

Every step of a probe, cleanup included, ends within :func:`probe_budget_s` (less than
``interval_s``; config requires ``timeout_s < interval_s``), so a hung LiveKit that answers
nothing costs each probe at most one interval and two failed probes fit in two intervals.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from livekit import api

from voiceops.config import HeartbeatConfig
from voiceops.monitor.diagnose import Listing

logger = logging.getLogger("voiceops.monitor.heartbeat")

FAILURES_TO_FIRE: Final = 2
PROBE_ROOM_PREFIX: Final = "voiceops-probe-"
CLEANUP_TIMEOUT_S: Final = 2.0


class ProbeResult(enum.StrEnum):
    OK = "ok"
    NO_JOB_REQUEST = "no_job_request"
    NO_JOIN = "no_join"  # join mode: the JobRequest came, the agent never joined
    DISPATCH_ERROR = "dispatch_error"


class Action(enum.StrEnum):
    NONE = "none"
    FIRE = "fire"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class HeartbeatState:
    consecutive_failures: int = 0
    firing: bool = False


def next_state(state: HeartbeatState, result: ProbeResult,
               failures_to_fire: int = FAILURES_TO_FIRE) -> tuple[HeartbeatState, Action]:
    """The policy: fire after ``failures_to_fire`` failures in a row; resolve on a success."""
    if result is ProbeResult.OK:
        return HeartbeatState(), (Action.RESOLVE if state.firing else Action.NONE)
    failures = state.consecutive_failures + 1
    fire = not state.firing and failures >= failures_to_fire
    return HeartbeatState(failures, state.firing or fire), (Action.FIRE if fire else Action.NONE)


def failures_to_fire(livekit_down: bool) -> int:
    """Two failed probes in a row; one when the reachability check also finds LiveKit down,
    so a hung LiveKit fires within two intervals (a probe and a check, each bounded)."""
    return 1 if livekit_down else FAILURES_TO_FIRE


def probe_budget_s(cfg: HeartbeatConfig) -> float:
    """The longest one probe may take, cleanup included: half-way between timeout and interval."""
    return cfg.timeout_s + (cfg.interval_s - cfg.timeout_s) / 2


def probe_room_name(host: str, n: int) -> str:
    """``voiceops-probe-<host>-<n>`` with the host reduced to room-name-safe characters."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", host).strip("-")[:48] or "host"
    return f"{PROBE_ROOM_PREFIX}{safe}-{n}"


def is_probe_room(room: str) -> bool:
    return room.startswith(PROBE_ROOM_PREFIX)


@dataclass(frozen=True)
class ProbeOutcome:
    result: ProbeResult
    room: str
    dispatch_id: str = ""
    job_request_s: float | None = None  # dispatch → JobRequest
    join_s: float | None = None  # dispatch → agent in the room (join mode)
    error: BaseException | None = None  # the CreateDispatch failure
    answered_elsewhere: bool = False  # no JobRequest here, but ListDispatch shows a job
    listing: Listing | None = None  # LiveKit's ListDispatch, taken when no JobRequest came


@dataclass
class _Pending:
    started: float
    job_request: asyncio.Future[float]
    joined: asyncio.Future[float]
    dispatch_id: str = ""
    budget_end: float = 0.0  # no step of this probe (cleanup included) runs past it


class Heartbeat:
    """Runs probes; the monitor routes probe ``job_request``/``agent_joined`` events here."""

    def __init__(self, cfg: HeartbeatConfig, agent_name: str,
                 lkapi: Callable[[], api.LiveKitAPI], *, clock: Callable[[], float],
                 host: str | None = None) -> None:
        self.cfg = cfg
        self.agent_name = agent_name
        self._lkapi = lkapi
        self._clock = clock
        self._host = host if host is not None else socket.gethostname()
        self._n = 0
        self._pending: dict[str, _Pending] = {}  # room -> probe in flight

    def _find(self, room: str, dispatch_id: str) -> _Pending | None:
        pending = self._pending.get(room)
        if pending is None and dispatch_id:
            pending = next((p for p in self._pending.values() if p.dispatch_id == dispatch_id),
                           None)
        return pending

    def job_request_seen(self, room: str, dispatch_id: str = "") -> bool:
        """A JobRequest for one of our probes (True), or not ours (False)."""
        pending = self._find(room, dispatch_id)
        if pending is None:
            return False
        if not pending.job_request.done():
            pending.job_request.set_result(self._clock() - pending.started)
        return True

    def agent_joined_seen(self, room: str, dispatch_id: str = "") -> bool:
        pending = self._find(room, dispatch_id)
        if pending is None:
            return False
        if not pending.joined.done():
            pending.joined.set_result(self._clock() - pending.started)
        return True

    async def probe(self) -> ProbeOutcome:
        """One probe, start to cleanup; never raises except on cancellation."""
        self._n += 1
        room = probe_room_name(self._host, self._n)
        loop = asyncio.get_running_loop()
        now = self._clock()
        pending = _Pending(now, loop.create_future(), loop.create_future(),
                           budget_end=now + probe_budget_s(self.cfg))
        self._pending[room] = pending  # before CreateDispatch: the JobRequest may beat its answer
        try:
            return await self._run(room, pending)
        finally:
            del self._pending[room]
            await self._cleanup(room, min(CLEANUP_TIMEOUT_S, self._left(pending)))

    def _left(self, pending: _Pending) -> float:
        return max(0.0, pending.budget_end - self._clock())

    async def _run(self, room: str, pending: _Pending) -> ProbeOutcome:
        meta = json.dumps({"voiceops_probe": True, "mode": self.cfg.mode})
        req = api.CreateAgentDispatchRequest(agent_name=self.agent_name, room=room, metadata=meta)
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                dispatch = await self._lkapi().agent_dispatch.create_dispatch(req)
        except Exception as exc:  # any failure to dispatch is the probe's result
            logger.info("heartbeat_create_dispatch_failed error=%s", type(exc).__name__)
            return ProbeOutcome(ProbeResult.DISPATCH_ERROR, room, error=exc)
        pending.dispatch_id = dispatch.id
        jr_s = await self._wait(pending.job_request, pending.started + self.cfg.timeout_s)
        if jr_s is None:
            listing = await self._listing(room, dispatch.id, self._left(pending))
            if listing.jobs:
                return ProbeOutcome(ProbeResult.OK, room, dispatch.id, answered_elsewhere=True,
                                    listing=listing)
            return ProbeOutcome(ProbeResult.NO_JOB_REQUEST, room, dispatch.id, listing=listing)
        if self.cfg.mode != "join":
            return ProbeOutcome(ProbeResult.OK, room, dispatch.id, job_request_s=jr_s)
        join_s = await self._wait(pending.joined, min(self._clock() + self.cfg.timeout_s,
                                                      pending.budget_end))
        result = ProbeResult.OK if join_s is not None else ProbeResult.NO_JOIN
        return ProbeOutcome(result, room, dispatch.id, job_request_s=jr_s, join_s=join_s)

    async def _wait(self, fut: asyncio.Future[float], until: float) -> float | None:
        remaining = until - self._clock()
        if fut.done():
            return fut.result()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(remaining, 0.0))
        except TimeoutError:
            return None

    async def _listing(self, room: str, dispatch_id: str, timeout_s: float) -> Listing:
        """ListDispatch: does any dispatch of ours in the probe room have a job (answered
        elsewhere)? Kept as the evidence for the diagnosis when none has."""
        try:
            async with asyncio.timeout(timeout_s):
                dispatches = await self._lkapi().agent_dispatch.list_dispatch(room)
        except Exception as exc:  # cannot confirm: treat as not answered
            logger.info("heartbeat_list_dispatch_failed dispatch_id=%s error=%s", dispatch_id,
                        type(exc).__name__)
            return Listing(room, dispatch_id, answered=False)
        ours = [d for d in dispatches if d.agent_name == self.agent_name]
        return Listing(room, dispatch_id, found=any(d.id == dispatch_id for d in ours),
                       jobs=sum(len(d.state.jobs) for d in ours))

    async def _cleanup(self, room: str, timeout_s: float) -> None:
        """Delete the probe room (best effort: an unreachable LiveKit already alerts)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._lkapi().room.delete_room(api.DeleteRoomRequest(room=room))
        except Exception as exc:
            logger.debug("heartbeat_delete_room_failed error=%s", type(exc).__name__)
