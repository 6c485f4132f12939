"""Any LiveKit entrypoint, wrapped with voiceops' job events.

The wrapper runs in the job process (forkserver child), so what the AgentServer holds must be
picklable: :func:`wrap` returns a ``functools.partial`` of the module-level :func:`run_job`
carrying only the ``"module:function"`` string, which the job process resolves itself.

Events from the job process: ``agent_joined`` when ``ctx.connect()`` returns (whoever calls
it: the entrypoint, ``AgentSession.start`` or ``wait_for_participant``), and ``job_ended``
with its outcome from a shutdown callback, i.e. after the job really ended (an entrypoint
returning does not end a LiveKit job; the room disconnecting or ``ctx.shutdown()`` does).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from livekit.agents import AutoSubscribe, JobContext, JobProcess
from livekit.protocol import models

from voiceops import events
from voiceops.config import ConfigError
from voiceops.worker import rtcruntime
from voiceops.worker.probe import ProbeMode, probe_mode

logger = logging.getLogger("voiceops.worker.job")

ENTRYPOINT_KEY: Final = "workers.entrypoint"
# livekit-agents' ShutdownRequest reason when the worker closes a running job (drain timeout,
# termination by the server, worker shutdown): the job did not end on its own.
PARENT_SHUTDOWN_REASON: Final = "parent process shutdown"
CRASH_REASON: Final = "job crashed"
PROBE_SHUTDOWN_REASON: Final = "voiceops probe done"
_R = models.DisconnectReason
# How a call ends by itself: we left, or the room went away. Anything else cut the call.
CALL_ENDED: Final = frozenset({_R.UNKNOWN_REASON, _R.CLIENT_INITIATED, _R.ROOM_DELETED,
                               _R.ROOM_CLOSED})
CUT_REASONS: Final[dict[int, str]] = {
    _R.DUPLICATE_IDENTITY: "impersonated",
    _R.PARTICIPANT_REMOVED: "removed",
}

Entrypoint = Callable[[JobContext], Awaitable[None]]


class EntrypointError(ConfigError):
    """``workers.entrypoint`` does not name an async function."""


class JobFailure(Exception):
    """An entrypoint's deliberate, named failure (e.g. no Letta agent to talk to).

    The job ends at once with ``job_ended{outcome="failed", reason}``; no traceback is logged.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve(spec: str) -> Entrypoint:
    """Import ``"module:function"`` (``function`` may be dotted) and check it is async."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise EntrypointError(f"{ENTRYPOINT_KEY}: must be 'module:function', not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code: any error is a bad setting
        raise EntrypointError(
            f"{ENTRYPOINT_KEY}: cannot import module {module_name!r} ({spec!r}): "
            f"{type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise EntrypointError(
                f"{ENTRYPOINT_KEY}: module {module_name!r} has no attribute {attr!r}") from None
    if not _is_async_callable(target):
        raise EntrypointError(
            f"{ENTRYPOINT_KEY}: {spec!r} must be an async function taking a JobContext")
    return target  # type: ignore[no-any-return]


def _is_async_callable(obj: Any) -> bool:
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - an instance with an async __call__
    return not inspect.isclass(obj) and inspect.iscoroutinefunction(call)


def wrap(spec: str) -> Entrypoint:
    """The picklable entrypoint given to the AgentServer."""
    return functools.partial(run_job, spec)


def module_hook(spec: str, name: str) -> Callable[..., Any] | None:
    """An optional function beside the entrypoint (``prewarm``, ``check_config``), or None."""
    module = importlib.import_module(spec.partition(":")[0])
    hook = getattr(module, name, None)
    return hook if callable(hook) else None


def wrap_setup(spec: str) -> Callable[[JobProcess], None]:
    """The picklable ``setup_fnc``: runs the entrypoint module's ``prewarm(proc)``, if any."""
    return functools.partial(run_setup, spec)


def run_setup(spec: str, proc: JobProcess) -> None:
    """Job process start-up (before its first job): load what a call must not wait for."""
    warm_rtc()
    hook = module_hook(spec, "prewarm")
    if hook is not None:
        hook(proc)


def warm_rtc() -> None:
    """Start the ``livekit`` rtc runtime in this (idle) job process.

    It starts lazily, on a job's first ``ctx.connect()``: loading the 28 MB FFI library and
    starting its threads blocked the job's event loop 0.3-0.4 s per job in a 20-job burst on
    this 2-core machine. Here it costs nothing on a call's path (:mod:`.rtcruntime`)."""
    rtcruntime.start()


def cut_reason(disconnect_reason: int) -> str:
    """The ``voiceops_calls_cut_total`` reason of a room disconnect, "" when the call ended."""
    if disconnect_reason in CALL_ENDED:
        return ""
    return CUT_REASONS.get(disconnect_reason, "disconnected")


def classify_outcome(*, connect_failed: bool, errored: bool, cancelled: bool,
                     reason: str, cut: str = "") -> str:
    """The ``job_ended`` outcome: connect_failed | cut | failed | cancelled | success."""
    if connect_failed:
        return "connect_failed"
    if cut:
        return "cut"
    if errored or reason == CRASH_REASON:
        return "failed"
    if cancelled or reason == PARENT_SHUTDOWN_REASON:
        return "cancelled"
    return "success"


async def run_job(spec: str, ctx: JobContext) -> None:
    """The wrapped entrypoint (job process): probes are handled here, the rest goes to ``spec``."""
    tracker = JobTracker(ctx)
    try:
        if probe_mode(ctx.job.metadata) is ProbeMode.JOIN:
            await _probe_join(ctx)
        else:
            await resolve(spec)(ctx)
    except JobFailure as exc:
        tracker.fail(exc.reason)
        logger.error("job_failed job_id=%s dispatch_id=%s reason=%r", ctx.job.id,
                     ctx.job.dispatch_id, exc.reason)
        ctx.shutdown(reason=exc.reason)
    except asyncio.CancelledError:
        tracker.cancelled = True
        raise
    except Exception:
        tracker.errored = True
        raise


async def _probe_join(ctx: JobContext) -> None:
    """Join the room and leave at once: proves the media path without a pipeline."""
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    ctx.shutdown(reason=PROBE_SHUTDOWN_REASON)


class JobTracker:
    """Hooks one job's connect and shutdown and turns them into events."""

    def __init__(self, ctx: JobContext,
                 emit: Callable[[events.Event], bool] = events.emit) -> None:
        self._ctx = ctx
        self._emit = emit
        self.connect_failed = False
        self.errored = False
        self.cancelled = False
        self._joined = False
        self._ended = False
        self.failure = ""
        self.cut = ""  # why the agent lost its call, when not because the call ended
        original = ctx.connect

        @functools.wraps(original)
        async def connect(*args: Any, **kwargs: Any) -> None:
            try:
                await original(*args, **kwargs)
            except asyncio.CancelledError:
                # Ended before the agent ever joined: on LiveKit a failing connect attempt leaves
                # the room, and the server then terminates the job ("agent worker left the
                # room") while the SDK still retries. No call was ever served: a join failure.
                self.connect_failed = True
                raise
            except Exception:
                self.connect_failed = True
                raise
            self._on_joined()

        # An instance attribute shadows the method, so every caller goes through the hook.
        ctx.connect = connect  # type: ignore[method-assign]
        ctx.add_shutdown_callback(self._on_shutdown)
        ctx.room.on("disconnected", self._on_disconnected)

    def _on_disconnected(self, reason: int) -> None:
        """The agent left the room; a duplicate identity or a removal cut the call."""
        self.cut = cut_reason(reason)
        if self.cut:
            logger.warning("call_cut job_id=%s cut_reason=%s disconnect_reason=%s",
                           self._ctx.job.id, self.cut, _R.Name(reason))

    def fail(self, reason: str) -> None:
        """The job ends as failed, for this named reason."""
        self.errored = True
        self.failure = reason

    def _on_joined(self) -> None:
        if self._joined:
            return
        self._joined = True
        job = self._ctx.job
        self._emit(events.AgentJoined(job_id=job.id, dispatch_id=job.dispatch_id,
                                      room=job.room.name,
                                      identity=self._ctx.room.local_participant.identity))

    async def _on_shutdown(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        outcome = classify_outcome(connect_failed=self.connect_failed, errored=self.errored,
                                   cancelled=self.cancelled, reason=reason, cut=self.cut)
        job = self._ctx.job
        self._emit(events.JobEnded(job_id=job.id, dispatch_id=job.dispatch_id,
                                   room=job.room.name, outcome=outcome,
                                   reason=self.cut if outcome == "cut" else self.failure))
        logger.info("job_ended job_id=%s dispatch_id=%s outcome=%s reason=%r", job.id,
                    job.dispatch_id, outcome, reason)
