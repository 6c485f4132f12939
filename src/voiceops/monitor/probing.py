"""HeartbeatFailed and LiveKitUnreachable: the heartbeat's probe loop and the LiveKit check.

Every ``heartbeat.interval_s`` a probe dispatch (:class:`~voiceops.monitor.heartbeat.Heartbeat`)
tests the whole path with no traffic; its outcome feeds the probe metrics, the dispatch
histograms (through ``probe_observed``: dispatch metrics have one writer) and the heartbeat's
state machine (:func:`~voiceops.monitor.heartbeat.next_state`). The LiveKit check runs at least
once per interval, so a failed probe confirmed by a failed check fires at once. Probes and
alerts are held while the operator stops or drains on purpose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from livekit import api

from voiceops.config import HeartbeatConfig
from voiceops.metrics import Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor import diagnose, poolcheck, reach
from voiceops.monitor.heartbeat import (
    Action,
    Heartbeat,
    HeartbeatState,
    ProbeOutcome,
    ProbeResult,
    failures_to_fire,
    next_state,
)

logger = logging.getLogger("voiceops.monitor.probing")


@dataclass(frozen=True)
class ProbingOptions:
    heartbeat: HeartbeatConfig
    livekit_url: str
    start_timeout_s: float  # workers.start_timeout_s: no probe before the pool could be ready
    livekit_timeout_s: float = 5.0


class Probing:
    def __init__(self, heartbeat: Heartbeat, metrics: Metrics, options: ProbingOptions, *,
                 livekit: Callable[[], api.LiveKitAPI], status: Callable[[], dict[str, Any]],
                 alerts: A.Alerting, facts: Callable[..., Awaitable[diagnose.Facts]],
                 probe_observed: Callable[[ProbeOutcome], None],
                 wait_pool_ready: Callable[[float], Awaitable[None]],
                 clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.heartbeat, self.metrics, self.opts = heartbeat, metrics, options
        self._livekit, self._status = livekit, status
        self._fire, self._resolve = alerts.fire, alerts.resolve
        self._facts, self._probe_observed = facts, probe_observed
        self._wait_pool_ready, self._clock, self._wall = wait_pool_ready, clock, wall
        self.hb_state = HeartbeatState()
        self.livekit = reach.Reachability()

    def planned_outage(self) -> str | None:
        """A stop or drain the operator asked for is under way (alerts about it are held)."""
        status = self._status()
        return poolcheck.planned_outage(status) if status else None

    # ---- LiveKit ---------------------------------------------------------------------------

    def observe_livekit(self, error: BaseException | None) -> None:
        self.livekit = reach.observe(self.livekit, error)
        if not self.livekit.firing:
            self._resolve(A.LIVEKIT_UNREACHABLE)
            return
        diagnosis = reach.livekit_diagnosis(self.livekit, self.opts.livekit_url)
        self._fire(A.LIVEKIT_UNREACHABLE, diagnosis, {"reason": str(self.livekit.last_failure)})
        hb = self.hb_state
        if hb.consecutive_failures >= failures_to_fire(True) and not hb.firing \
                and self.planned_outage() is None:
            # The last probe failed and LiveKit is down: the heartbeat is failing now.
            self.hb_state = HeartbeatState(hb.consecutive_failures, firing=True)
            self._fire(A.HEARTBEAT_FAILED, f"the last probe failed: {diagnosis}",
                       {"result": str(ProbeResult.DISPATCH_ERROR)})

    async def check_livekit(self) -> None:
        if self._status().get("state") == "stopping":
            return  # the sandbox's emulator stops with us
        try:
            async with asyncio.timeout(reach.check_timeout_s(self.opts.heartbeat,
                                                             self.opts.livekit_timeout_s)):
                await self._livekit().room.list_rooms(
                    api.ListRoomsRequest(names=["voiceops-ping"]))
        except Exception as exc:
            self.observe_livekit(exc)
        else:
            self.observe_livekit(None)

    # ---- the heartbeat -------------------------------------------------------------------

    async def run(self) -> None:
        """Probe every ``heartbeat.interval_s``, start to start, from soon after the pool is
        ready (a probe before then would only report the start-up as an outage)."""
        await self._wait_pool_ready(max(self.opts.heartbeat.interval_s,
                                        self.opts.start_timeout_s))
        interval = self.opts.heartbeat.interval_s
        while True:
            started = self._clock()
            try:
                planned = self.planned_outage()
                if planned is None:
                    await self.apply_probe(await self.heartbeat.probe())
                else:
                    logger.info("heartbeat_probe_skipped reason=planned_outage")
            except Exception:
                logger.exception("heartbeat_probe_crashed")
            if self.hb_state.consecutive_failures > 0 and not self.hb_state.firing:
                continue  # confirm a first failure at once rather than a whole interval later
            await asyncio.sleep(max(0.0, started + interval - self._clock()))

    async def apply_probe(self, outcome: ProbeOutcome) -> None:
        if outcome.result is not ProbeResult.OK and self.planned_outage():
            # The probe overlapped a stop the operator asked for: not a failure of the path.
            logger.info("heartbeat_probe_not_counted dispatch_id=%s result=%s "
                        "reason=planned_outage", outcome.dispatch_id, outcome.result)
            return
        self.metrics.heartbeat_probes.labels(str(outcome.result)).inc()
        self.observe_livekit(outcome.error if outcome.result is ProbeResult.DISPATCH_ERROR
                             else None)
        self._probe_observed(outcome)
        if outcome.result is ProbeResult.OK:
            self.metrics.heartbeat_last_success.set(self._wall())
        livekit_down = self.livekit.firing and outcome.result is ProbeResult.DISPATCH_ERROR
        self.hb_state, action = next_state(self.hb_state, outcome.result,
                                           failures_to_fire(livekit_down))
        if action is Action.RESOLVE:
            self._resolve(A.HEARTBEAT_FAILED)
        elif self.hb_state.firing:
            facts = await self._facts(joins_missing=outcome.result is ProbeResult.NO_JOIN,
                                      listing=outcome.listing)
            self._fire(A.HEARTBEAT_FAILED, f"{outcome.result} on {outcome.room}: "
                       f"{diagnose.dispatch_path(facts)}", {"result": str(outcome.result)})
        logger.info("heartbeat_probe dispatch_id=%s result=%s consecutive_failures=%d",
                    outcome.dispatch_id, outcome.result, self.hb_state.consecutive_failures)
