"""Pool alerts from the supervisor's status(): NoReadyWorkers and WorkerCrashLoop.

The policy is pure functions; :class:`PoolWatch` applies it to each fresh status."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from voiceops.monitor import alerts as A
from voiceops.monitor import diagnose

# Stop reasons an operator (or the supervisor on their behalf) asked for: not an incident.
REQUESTED_STOPS: Final = frozenset({"manual", "scale", "reload", "shutdown"})


@dataclass(frozen=True)
class PoolVerdict:
    no_ready_since: float | None  # monotonic s since when no worker was ready (None: some are)
    no_ready_fire: bool
    parked: tuple[dict[str, Any], ...]


def check_pool(status: dict[str, Any], no_ready_since: float | None, now: float,
               grace_s: float) -> PoolVerdict:
    """NoReadyWorkers fires once ``desired > 0`` and ``ready == 0`` lasted ``grace_s``
    (workers need a few seconds to register after a start); WorkerCrashLoop while any process
    is parked."""
    pool = status.get("pool", {})
    processes: Sequence[dict[str, Any]] = status.get("processes", [])
    none_ready = int(pool.get("desired", 0)) > 0 and int(pool.get("ready", 0)) == 0
    since = (no_ready_since if no_ready_since is not None else now) if none_ready else None
    fire = since is not None and now - since >= grace_s
    parked = tuple(p for p in processes if p.get("state") == "parked" or p.get("config_error"))
    return PoolVerdict(since, fire, parked)


def planned_outage(status: dict[str, Any]) -> str | None:
    """Why no worker being ready is expected right now, or None when it would be an incident:
    the supervisor is stopping, or every worker not starting is draining on request."""
    if status.get("state") == "stopping":
        return "the supervisor is stopping"
    workers = [p for p in status.get("processes", []) if p.get("kind") == "worker"]
    if any(p.get("state") == "ready" for p in workers):
        return None
    draining = [p for p in workers if p.get("state") in ("draining", "stopping")
                and p.get("stop_reason") in REQUESTED_STOPS]
    others = [p for p in workers if p not in draining and p.get("state") != "starting"]
    if draining and not others:
        return f"{', '.join(str(p.get('name')) for p in draining)} draining on request"
    return None


class PoolWatch:
    def __init__(self, *, grace_s: float, alerts: A.Alerting,
                 clock: Callable[[], float]) -> None:
        self._grace_s, self._clock = grace_s, clock
        self._fire, self._resolve = alerts.fire, alerts.resolve
        self.no_ready_since: float | None = None

    def check(self, status: dict[str, Any]) -> None:
        """Fire or resolve both pool alerts from ``status`` (nothing when it is empty)."""
        if not status:
            return
        if planned_outage(status) is not None:
            self.no_ready_since = None  # the grace starts again once the planned part is over
            return
        verdict = check_pool(status, self.no_ready_since, self._clock(), self._grace_s)
        self.no_ready_since = verdict.no_ready_since
        if verdict.no_ready_fire:
            self._fire(A.NO_READY_WORKERS, diagnose.no_ready_workers(
                status.get("pool", {}), status.get("processes", [])), None)
        elif verdict.no_ready_since is None:
            self._resolve(A.NO_READY_WORKERS)
        if verdict.parked:
            self._fire(A.WORKER_CRASH_LOOP, diagnose.crash_loop(verdict.parked),
                       {"process": str(verdict.parked[0].get("name", ""))})
        else:
            self._resolve(A.WORKER_CRASH_LOOP)
