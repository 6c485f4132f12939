"""Alert state: which of DESIGN's alerts fire, since when, with which labels and diagnosis.

Each alert name has one instance (``DispatchUnanswered`` names its latest room and dispatch in
labels). States follow one transition table; :class:`AlertBook` returns a :class:`Change`
for every fire or resolve so the sinks (log, metrics, webhooks) see each edge exactly once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from voiceops.metrics import ALERTS

DISPATCH_UNANSWERED: Final = "DispatchUnanswered"
HEARTBEAT_FAILED: Final = "HeartbeatFailed"
NO_READY_WORKERS: Final = "NoReadyWorkers"
WORKER_CRASH_LOOP: Final = "WorkerCrashLoop"
LIVEKIT_UNREACHABLE: Final = "LiveKitUnreachable"
LETTA_UNREACHABLE: Final = "LettaUnreachable"

SEVERITY: Final[dict[str, str]] = {
    DISPATCH_UNANSWERED: "critical",
    HEARTBEAT_FAILED: "critical",
    NO_READY_WORKERS: "critical",
    WORKER_CRASH_LOOP: "warning",
    LIVEKIT_UNREACHABLE: "critical",
    LETTA_UNREACHABLE: "warning",
}

SUMMARY: Final[dict[str, str]] = {
    DISPATCH_UNANSWERED: "a dispatch was not followed by a JobRequest",
    HEARTBEAT_FAILED: "heartbeat probe dispatches are failing",
    NO_READY_WORKERS: "no agent worker is ready",
    WORKER_CRASH_LOOP: "a worker is parked after a crash loop",
    LIVEKIT_UNREACHABLE: "LiveKit is unreachable or refuses our credentials",
    LETTA_UNREACHABLE: "Letta is unreachable",
}


class Alerting(Protocol):
    """Where the monitor's parts send alert edges (the monitor: its book and sinks)."""

    def fire(self, name: str, diagnosis: str, labels: dict[str, str] | None = None) -> None: ...
    def resolve(self, name: str) -> None: ...


class AlertState(enum.StrEnum):
    RESOLVED = "resolved"
    FIRING = "firing"


class Edge(enum.StrEnum):
    FIRE = "fire"
    RESOLVE = "resolve"


# (state, input) -> (next state, whether the sinks hear about it)
_TRANSITIONS: Final[dict[tuple[AlertState, Edge], tuple[AlertState, bool]]] = {
    (AlertState.RESOLVED, Edge.FIRE): (AlertState.FIRING, True),
    (AlertState.FIRING, Edge.FIRE): (AlertState.FIRING, False),  # diagnosis may be refreshed
    (AlertState.FIRING, Edge.RESOLVE): (AlertState.RESOLVED, True),
    (AlertState.RESOLVED, Edge.RESOLVE): (AlertState.RESOLVED, False),
}


@dataclass
class Alert:
    name: str
    state: AlertState = AlertState.RESOLVED
    since: float = 0.0  # wall clock (unix s) of the last edge
    diagnosis: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        """The shape of one entry of status()["alerts"]."""
        return {"alert": self.name, "since": self.since, "diagnosis": self.diagnosis,
                "labels": dict(self.labels)}


@dataclass(frozen=True)
class Change:
    """One edge, as the sinks see it."""

    alert: str
    edge: Edge
    at: float  # wall clock, unix s
    since: float  # when it started firing
    diagnosis: str
    labels: dict[str, str]
    severity: str
    summary: str


class AlertBook:
    """All alerts' states; ``fire``/``resolve`` are idempotent and return the edge if any."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._alerts = {name: Alert(name) for name in ALERTS}

    def _step(self, name: str, edge: Edge) -> bool:
        alert = self._alerts[name]  # KeyError on an unknown name: a programming error
        nxt, notify = _TRANSITIONS[(alert.state, edge)]
        alert.state = nxt
        return notify

    def fire(self, name: str, diagnosis: str,
             labels: dict[str, str] | None = None) -> Change | None:
        """Fire (or refresh the diagnosis of) ``name``; a Change only on the resolved->firing
        edge."""
        alert = self._alerts[name]
        notify = self._step(name, Edge.FIRE)
        alert.diagnosis = diagnosis
        if notify:
            alert.since = self._wall()
            alert.labels = dict(labels or {})
            return self._change(alert, Edge.FIRE)
        return None

    def resolve(self, name: str, diagnosis: str = "") -> Change | None:
        alert = self._alerts[name]
        if not self._step(name, Edge.RESOLVE):
            return None
        change = self._change(alert, Edge.RESOLVE, diagnosis or alert.diagnosis)
        alert.since = change.at
        return change

    def _change(self, alert: Alert, edge: Edge, diagnosis: str | None = None) -> Change:
        now = self._wall()
        return Change(alert=alert.name, edge=edge, at=now, since=alert.since,
                      diagnosis=alert.diagnosis if diagnosis is None else diagnosis,
                      labels=dict(alert.labels), severity=SEVERITY[alert.name],
                      summary=SUMMARY[alert.name])

    def is_firing(self, name: str) -> bool:
        return self._alerts[name].state is AlertState.FIRING

    def firing(self) -> list[Alert]:
        return [a for a in self._alerts.values() if a.state is AlertState.FIRING]

    def alerts(self) -> list[dict[str, Any]]:
        """Firing alerts in the status() JSON shape."""
        return [a.to_status() for a in self.firing()]
