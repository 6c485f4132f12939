"""Events that child processes send to the supervisor, and the sender.

Wire format: one JSON object per datagram on the unix datagram socket named by
``$VOICEOPS_EVENTS``::

    {"v": 1, "type": "job_request", "ts": 1732400000.1, "process": "worker-0", "pid": 4242, ...}

Sending never blocks and never raises: a lost supervisor costs events, never calls.
The supervisor decodes with :func:`decode`, which raises :class:`EventError` on anything
malformed so the receiver can count it in ``voiceops_events_dropped_total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

SCHEMA_VERSION: Final = 1
EVENTS_ENV: Final = "VOICEOPS_EVENTS"
PROCESS_ENV: Final = "VOICEOPS_PROCESS"
# Far below the unix datagram limit (net.core.wmem_default); events are small by design.
MAX_DATAGRAM_BYTES: Final = 32 * 1024
MAX_PENDING_EVENTS: Final = 256
RETRY_DELAYS_S: Final = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
# After EAGAIN, emits only queue for this long: a stalled reader costs no syscall per call.
FULL_HOLD_OFF_S: Final = 0.001
# One encoder for the process: json.dumps(separators=...) builds a new one on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))


class EventError(ValueError):
    """A datagram that is not a valid voiceops event."""


def _process_name() -> str:
    return os.environ.get(PROCESS_ENV, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event carries; subclasses add their own and a ``TYPE``."""

    TYPE: ClassVar[str] = ""
    ts: float = field(default_factory=time.time)
    process: str = field(default_factory=_process_name)
    pid: int = field(default_factory=os.getpid)

    def to_dict(self) -> dict[str, Any]:
        # A flat copy: dataclasses.asdict deep-copies and was half the cost of emit() (bench/).
        out: dict[str, Any] = {"v": SCHEMA_VERSION, "type": self.TYPE}
        for name in _field_names(type(self)):
            out[name] = getattr(self, name)
        return out


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    # A dict rather than functools.cache: mypy cannot see that a frozen dataclass's class
    # object is hashable. A race only computes the same tuple twice.
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(Event):
    """The child is ready: a worker registered with LiveKit, or the proxy is listening."""

    TYPE: ClassVar[str] = "ready"
    worker_id: str = ""
    agent_name: str = ""
    http_port: int = 0
    listen: str = ""
    standby: bool = False  # registered but reporting itself full until activated (SIGUSR2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Jobs(Event):
    """A worker's current number of active jobs (sent on every change)."""

    TYPE: ClassVar[str] = "jobs"
    active_jobs: int
    load: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchCreated(Event):
    """LiveKit accepted (or we reused) a dispatch; latency is proxy request → LiveKit answered."""

    TYPE: ClassVar[str] = "dispatch_created"
    dispatch_id: str
    room: str
    agent_name: str
    latency_s: float
    reused: bool = False
    source: str = "proxy"  # proxy | heartbeat | cli


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchFailed(Event):
    """A dispatch request that did not produce a dispatch, with the outcome label it counts
    under."""

    TYPE: ClassVar[str] = "dispatch_failed"
    room: str
    agent_name: str
    reason: str  # bad_request | unauthorized | rate_limited | livekit_error | timeout
    latency_s: float = 0.0
    message: str = ""
    source: str = "proxy"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequest(Event):
    """A worker received LiveKit's AvailabilityRequest (the JobRequest) and decided."""

    TYPE: ClassVar[str] = "job_request"
    job_id: str
    dispatch_id: str
    room: str
    agent_name: str
    probe: bool = False
    decision: str = "accepted"  # accepted | rejected | probe
    worker_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentJoined(Event):
    """The agent is in the room: ``ctx.connect()`` returned, or LiveKit's webhook said so."""

    TYPE: ClassVar[str] = "agent_joined"
    job_id: str = ""
    dispatch_id: str = ""
    room: str = ""
    identity: str = ""
    source: str = "worker"  # worker | webhook


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEnded(Event):
    """A job's entrypoint finished."""

    TYPE: ClassVar[str] = "job_ended"
    job_id: str
    dispatch_id: str = ""
    room: str = ""
    outcome: str = "success"  # success | failed | cancelled | connect_failed | cut
    # why a job failed, e.g. "no_letta_agent_id", or why a call was cut (outcome cut:
    # impersonated | removed | disconnected); never a room or a caller
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceMetric(Event):
    """One voice-pipeline latency sample from a job process."""

    TYPE: ClassVar[str] = "voice_metric"
    metric: str  # voice_response | llm_ttft | tts_ttfb | stt_delay
    value_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceCount(Event):
    """One countable moment of a call: a caller turn, or the caller interrupting the agent."""

    TYPE: ClassVar[str] = "voice_count"
    what: str  # turn | interruption (an apology is a letta_error event)


EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.TYPE: cls
    for cls in (Ready, Jobs, DispatchCreated, DispatchFailed, JobRequest, AgentJoined, JobEnded,
                VoiceMetric, VoiceCount)
}

@dataclass(frozen=True, slots=True, kw_only=True)
class LettaError(Event):
    """A call's Letta turn failed and the caller heard an apology (never the caller's words)."""

    TYPE: ClassVar[str] = "letta_error"
    kind: str  # error | timeout | dropped
    letta_agent_id: str = ""
    latency_s: float = 0.0  # turn start → failure seen
    detail: str = ""  # "HTTP 503", an exception class name: no content, no secret


EVENT_TYPES[LettaError.TYPE] = LettaError


def encode(event: Event) -> bytes:
    return _ENCODER.encode(event.to_dict()).encode()


def decode(data: bytes) -> Event:
    """Parse one datagram; raise :class:`EventError` naming what is wrong."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventError("not a JSON object")
    if obj.pop("v", None) != SCHEMA_VERSION:
        raise EventError(f"unsupported schema version (want {SCHEMA_VERSION})")
    cls = EVENT_TYPES.get(obj.pop("type", None))
    if cls is None:
        raise EventError("unknown event type")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(obj) - names
    if unknown:
        raise EventError(f"unknown fields for {cls.TYPE}: {sorted(unknown)}")
    try:
        event = cls(**obj)
    except TypeError as exc:
        raise EventError(f"bad {cls.TYPE} event: {exc}") from None
    _check_types(event)
    return event


_FIELD_CHECKS: Final[dict[str, type | tuple[type, ...]]] = {
    "str": str, "int": int, "float": (int, float), "bool": bool,
}


def _check_types(event: Event) -> None:
    """Reject wrongly typed fields, so a bad child cannot poison metrics."""
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        want = _FIELD_CHECKS.get(str(f.type))
        if want is None:
            continue
        if isinstance(value, bool) and want is not bool:
            raise EventError(f"field {f.name} must be {f.type}, not bool")
        if not isinstance(value, want):
            raise EventError(f"field {f.name} must be {f.type}")


class Emitter:
    """Sends events to ``$VOICEOPS_EVENTS``; a no-op when the variable is unset.

    Linux queues only ``net.unix.max_dgram_qlen`` (often 10) datagrams per unix socket, so a
    burst can find the supervisor's queue full. Such events wait in a small bounded buffer and
    are retried from the caller's event loop a few milliseconds later (or on the next emit when
    there is no loop), oldest first; only overflow or a vanished supervisor loses events.
    """

    def __init__(self, path: str | None = None) -> None:
        self._path = path if path is not None else os.environ.get(EVENTS_ENV, "")
        self._sock: socket.socket | None = None
        self._pending: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._retrying = False
        self._closed = False
        self._full_until = 0.0  # monotonic; while ahead, the socket was full a moment ago
        self.sent = 0
        self.lost = 0

    def emit(self, event: Event) -> bool:
        """Send without blocking; True when sent now, False when queued for a retry or lost."""
        if not self._path:
            return False
        try:
            data = encode(event)
        except (TypeError, ValueError):
            self.lost += 1  # an unencodable field: lose the event, not the call
            return False
        if len(data) > MAX_DATAGRAM_BYTES:
            self.lost += 1
            return False
        with self._lock:
            sent_before = self.sent
            self._pending.append(data)
            if len(self._pending) > MAX_PENDING_EVENTS:
                self._pending.popleft()
                self.lost += 1
            if time.monotonic() >= self._full_until:
                self._flush()
            sent_now = not self._pending and self.sent > sent_before
        if self._pending:
            self._schedule_retry()
        return sent_now

    def _flush(self) -> None:
        """Send pending datagrams in order until the socket is full (caller holds the lock)."""
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            while self._pending:
                self._sock.sendto(self._pending[0], self._path)
                self._pending.popleft()
                self.sent += 1
        except BlockingIOError:
            self._full_until = time.monotonic() + FULL_HOLD_OFF_S
            return  # the supervisor's queue is full: retry later
        except OSError:
            # No supervisor (ENOENT, ECONNREFUSED): nothing will read these.
            self.lost += len(self._pending)
            self._pending.clear()

    def _schedule_retry(self, attempt: int = 0) -> None:
        if (self._retrying and attempt == 0) or self._closed:
            return
        self._retrying = True
        delay_s = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
        # The non-raising form: a thread without a loop would pay for an exception per emit.
        loop = asyncio._get_running_loop()
        if loop is not None:
            loop.call_later(delay_s, self._retry, attempt + 1)
            return
        # No loop in this thread (a plain program, a worker thread): a one-shot timer thread,
        # so the last events of a burst are not stranded until an emit that may never come.
        timer = threading.Timer(delay_s, self._retry, args=(attempt + 1,))
        timer.daemon = True
        timer.start()

    def _retry(self, attempt: int) -> None:
        with self._lock:
            self._full_until = 0.0
            if not self._closed:
                self._flush()
        self._retrying = False
        if self._pending:  # a live but busy supervisor: keep trying at the slowest pace
            self._schedule_retry(attempt)

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None


_default: Emitter | None = None


def emit(event: Event) -> bool:
    """Send ``event`` to the supervisor named by ``$VOICEOPS_EVENTS``. Never blocks, never
    raises."""
    global _default  # noqa: PLW0603 - one emitter per process, new when $VOICEOPS_EVENTS changes
    if _default is None or _default._path != os.environ.get(EVENTS_ENV, ""):
        _default = Emitter()
    return _default.emit(event)
