"""The supervisor as the control API, the HTTP endpoints and the monitor see it.

The pool implements :class:`SupervisorView`; ``control.py`` (unix socket), ``http.py``
(``/status``, ``/readyz``) and the CLI depend only on this Protocol and on the JSON shape of
:meth:`SupervisorView.status`::

    {"version": "0.1.0", "state": "running" | "stopping", "ready": true,
     "summary": "workers 3/4 ready, 1 parked; proxy up; 5 calls",
     "pool": {"desired": 4, "ready": 3, "parked": 1, "unhealthy": false},
     "processes": [{"name": "worker-0", "kind": "worker", "state": "ready", "pid": 123,
                    "uptime_s": 12.5, "restarts": 0, "pss_bytes": 123456, "cpu_s": 1.2,
                    "active_jobs": 1, "last_exit": "crash(1)", "worker_id": "AW_x",
                    "agent_name": "letta-voice-agent"}],
     "alerts": [{"alert": "HeartbeatFailed", "since": 1732400000.0, "diagnosis": "…",
                 "labels": {}}]}
"""

from __future__ import annotations

from typing import Any, Protocol

from voiceops.events import Event


class ControlError(Exception):
    """A refused control request; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SupervisorView(Protocol):
    def status(self) -> dict[str, Any]: ...

    def is_ready(self) -> bool: ...

    def is_alive(self) -> bool: ...

    async def scale(self, count: int) -> dict[str, Any]: ...

    async def restart(self, name: str) -> dict[str, Any]: ...

    async def drain(self, name: str) -> dict[str, Any]: ...

    def dispatch_timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        """``{"dispatch_id", "room", "phase", "job_request_after_s", "joined_after_s"}``."""


class EventSink(Protocol):
    """Receives every decoded child event (the pool, the monitor)."""

    def on_event(self, event: Event) -> None: ...
