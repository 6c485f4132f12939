"""One managed, named child across its restarts: the state machine and the restart policy.

Stopping follows livekit-agents' contract: the main PID gets exactly ONE SIGTERM (the first
signal drains; a second one makes the worker ``os._exit(1)`` and drops every call). If the
drain outlives its budget, the whole tree gets SIGKILL and the jobs still active are counted
in ``voiceops_drain_killed_jobs_total``. Deadlines are checked by :meth:`tick`, which the
pool's level-triggered reconcile loop calls. The OS side is behind :class:`Host` and
:class:`ChildHandle` (``supervisor/handle.py``); the state and its sub-state are one
:class:`~voiceops.supervisor.state.Phase`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from voiceops.events import Ready
from voiceops.metrics import Metrics
from voiceops.supervisor import oom, policy
from voiceops.supervisor.child import ChildRegistry, child_env
from voiceops.supervisor.handle import ChildHandle, Host
from voiceops.supervisor.logs import Forwarder
from voiceops.supervisor.policy import Action, ExitReason, FailureRecord
from voiceops.supervisor.proctable import ProcTable
from voiceops.supervisor.spec import ChildOptions, ChildSpec
from voiceops.supervisor.state import (
    RUNNING,
    PendingStop,
    Phase,
    State,
    StopOrder,
    amend,
    transition,
)

SPAWN_FAILED_RC = 127  # like a shell's "command not found"
# How our children report a config error on stderr: "<program>: <key>: <what is wrong>".
_CONFIG_ERROR = re.compile(r"^[\w. -]+: ((?:\$CREDENTIALS_DIRECTORY/)?[\w-]+(?:\.[\w-]+)+: .+)$")
log = logging.getLogger("voiceops.supervisor.process")


@dataclass
class Runtime:
    """What every managed process shares: injected so tests can swap clock and randomness."""

    metrics: Metrics
    forwarder: Forwarder
    registry: ChildRegistry
    events_path: str
    create_task: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
    wake: Callable[[], None]
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    base_env: Mapping[str, str] | None = None
    on_exit: Callable[[str, ExitReason], None] | None = None  # the monitor ends its jobs
    # A worker died unexpectedly and would restart: a warm standby may take its slot instead
    # (returns True when it did; this process object is then finished).
    takeover: Callable[[ManagedProcess, ExitReason], bool] | None = None
    host: Host = field(default_factory=Host)  # spawning and /proc: a fake in unit tests


def config_error_line(child: ChildHandle | None) -> str:
    """The child's own config error ("proxy.api_keys_file: cannot read …") from its last lines."""
    lines = list(child.output.tail) if child is not None else []
    for line in reversed(lines):
        found = _CONFIG_ERROR.match(line.strip())
        if found:
            return found.group(1)
    return next((line.strip() for line in reversed(lines) if line.strip()),
                "exit 78 (a config error; see its log)")


class ManagedProcess:
    def __init__(self, spec: ChildSpec, options: ChildOptions, rt: Runtime, *,
                 owns_metrics: bool = True) -> None:
        self.spec, self.options, self.rt = spec, options, rt
        self.phase = Phase()  # the state, and the sub-state the table governs with it
        self.owns_metrics = owns_metrics
        self.child: ChildHandle | None = None
        self.record = FailureRecord()
        self.restarts = 0
        self.last_exit: ExitReason | None = None
        self.active_jobs = 0
        self.ready_since: float | None = None
        self.started_at: float | None = None
        self.info: dict[str, str] = {}
        self.standby = False  # READY as a standby: registered, warm, taking no jobs yet
        self.config_error = ""  # set while held down by its own config error (exit 78)
        self.rollout_error = ""  # its replacement failed with a config error: old config serves
        self.pss_bytes = 0
        self.cpu_s = 0.0
        self._cpu_seen = 0.0
        self._rss_streak = 0
        self._oom_kills: int | None = None  # the kernel's OOM kill count when it started
        self.exited = asyncio.Event()  # set whenever the process is not running
        self.exited.set()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> State:
        return self.phase.state

    @property
    def final(self) -> bool:
        """Once set, the next exit is the last."""
        return self.phase.final

    @property
    def next_start_at(self) -> float | None:
        return self.phase.next_start_at

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def _amend(self, **changes: Any) -> None:
        self.phase = amend(self.phase, **changes)

    def _set(self, new: State, **changes: Any) -> None:
        self.phase = transition(self.phase, new, **changes)
        if self.running:
            self.exited.clear()
        else:
            self.exited.set()
        self.publish_metrics()
        self.rt.wake()

    def publish_metrics(self) -> None:
        if not self.owns_metrics:
            return
        m = self.rt.metrics
        m.set_process_state(self.name, self.state.value)
        m.process_up.labels(self.name).set(1 if self.running else 0)
        m.process_crashloop.labels(self.name).set(1 if self.state is State.PARKED else 0)
        m.process_pss.labels(self.name).set(self.pss_bytes if self.running else 0)

    async def start(self) -> None:
        """Spawn now (from EXITED, BACKOFF or PARKED)."""
        if self.final or self.running:
            return  # stopped for good (or already started) before this scheduled start ran
        if self.last_exit is not None and self.owns_metrics:
            self.rt.metrics.process_restarts.labels(self.name, self.last_exit.label).inc()
        if self.last_exit is not None:
            self.restarts += 1
        self._reset_generation()
        self._set(State.STARTING)
        env = child_env(self.spec, self.rt.events_path, self.rt.base_env)
        try:
            child = await self.rt.host.spawn(self.spec, env, self.rt.forwarder,
                                             self.rt.registry)
        except OSError as exc:
            log.error("process_spawn_failed process=%s argv0=%s error=%s", self.name,
                      self.spec.argv[0], exc.strerror or exc)
            await self._exited(None, SPAWN_FAILED_RC, orphans=0)
            return
        self.child = child
        log.info("process_started process=%s pid=%d", self.name, child.pid)
        self.rt.create_task(self._watch(child))
        pending = self.phase.pending
        if pending is not None:  # a stop arrived while we were spawning
            self.request_stop(pending.reason, restart=not self.final, budget_s=pending.budget_s)

    def _reset_generation(self) -> None:
        self.started_at, self.ready_since = self.rt.clock(), None
        self.config_error = ""
        self._oom_kills = self.rt.host.oom_kills()
        self.active_jobs, self._rss_streak, self.pss_bytes = 0, 0, 0
        self.cpu_s, self._cpu_seen = 0.0, 0.0
        self.info = {}

    async def _watch(self, child: ChildHandle) -> None:
        rc = await child.wait()
        orphans, _ = await asyncio.gather(child.settle(), child.drain_output())
        await self._exited(child, rc, orphans)

    async def _exited(self, child: ChildHandle | None, rc: int, orphans: int) -> None:
        stop = self.phase.stop
        reason = policy.classify_exit(
            rc, stop.sent if stop else None, stop.reason if stop else None,
            oom_killed=oom.rose(self._oom_kills, self.rt.host.oom_kills()))
        self.last_exit, self.child = reason, None
        if self.rt.on_exit is not None:
            self.rt.on_exit(self.name, reason)
        if orphans:
            self.rt.metrics.orphans_killed.inc(orphans)
            log.warning("orphans_killed process=%s count=%d", self.name, orphans)
        self._log_exit(child, reason)
        self.config_error = config_error_line(child) if reason.kind == "config" else ""
        if self.state is not State.EXITED:
            self._set(State.EXITED)
        if self.final:
            return
        now = self.rt.clock()
        decision = policy.decide_restart(reason, self.record, now, self.options.policy, self.rt.rng)
        self.record = decision.record
        if decision.action is Action.RESTART and not reason.requested \
                and self.rt.takeover is not None and self.rt.takeover(self, reason):
            self._amend(final=True)
            return
        if decision.action is Action.RESTART and decision.delay_s <= 0:
            await self.start()
        elif decision.action is Action.RESTART:
            log.info("process_backoff process=%s delay_s=%.2f failures=%d", self.name,
                     decision.delay_s, decision.record.streak)
            self._set(State.BACKOFF, next_start_at=now + decision.delay_s)
        elif decision.action is Action.HOLD:
            # exit 78: held until the config is fixed (a reload, or `voiceops restart NAME`)
            log.error("process_held process=%s config_error=%r exit_code=%d", self.name,
                      self.config_error, policy.EX_CONFIG)
            self._set(State.PARKED)
        elif decision.action is Action.PARK:
            log.error("process_parked process=%s failures=%d cooldown_s=%.1f", self.name,
                      len(decision.record.times), decision.delay_s)
            self._set(State.PARKED, next_start_at=now + decision.delay_s)

    def _log_exit(self, child: ChildHandle | None, reason: ExitReason) -> None:
        pid = child.pid if child else 0
        if reason.requested or reason.kind == "shutdown":
            log.info("process_exited process=%s pid=%d reason=%s", self.name, pid, reason.text)
            return
        tail = child.output.dump() if child else ""
        log.error("process_exited process=%s pid=%d reason=%s last_lines=%d\n%s", self.name,
                  pid, reason.text, len(child.output.tail) if child else 0, tail)

    def on_ready(self, event: Ready) -> None:
        info = {k: v for k, v in (("worker_id", event.worker_id),
                                  ("agent_name", event.agent_name)) if v}
        if self.state in (State.READY, State.DRAINING):
            # Re-registered with LiveKit (a dropped connection): LiveKit knows it by a new id now.
            if info and info != self.info:
                log.info("process_reregistered process=%s worker_id=%s", self.name,
                         info.get("worker_id", "-"))
                self.info = info
            return
        if self.state is not State.STARTING:
            return
        self.standby = event.standby
        self.ready_since = self.rt.clock()
        self.info = info
        log.info("process_ready process=%s pid=%d", self.name, self.child.pid if self.child else 0)
        self._set(State.READY)

    def on_jobs(self, active_jobs: int) -> None:
        self.active_jobs = max(0, active_jobs)
        self.rt.wake()

    def request_stop(self, reason: str, *, restart: bool, budget_s: float | None = None) -> None:
        """Graceful stop: one SIGTERM, then the drain budget. Never a second SIGTERM."""
        if not restart:
            self._amend(final=True)
        now = self.rt.clock()
        budget = self.options.drain_timeout_s if budget_s is None else budget_s
        stop = self.phase.stop
        if self.state in (State.STARTING, State.READY) and self.child is not None:
            order = StopOrder(reason, signal.SIGTERM, now + budget)
            self.child.send(signal.SIGTERM)
            log.info("process_draining process=%s reason=%s budget_s=%.1f jobs=%d", self.name,
                     reason, budget, self.active_jobs)
            self._set(State.DRAINING, stop=order)
        elif self.state is State.STARTING:
            self._amend(pending=PendingStop(reason, budget_s))
        elif self.state is State.DRAINING and stop is not None and stop.deadline is not None:
            self._amend(stop=replace(stop, deadline=min(stop.deadline, now + budget)))
        elif self.state in (State.BACKOFF, State.PARKED, State.EXITED):
            self._amend(next_start_at=None)
            if not restart and self.state is not State.EXITED:
                self._set(State.EXITED)
            elif restart:
                self.last_exit = ExitReason(reason)
                self.rt.create_task(self.start())

    def shorten(self, cap_s: float) -> None:
        """A second stop signal: cut the remaining budget to at most ``cap_s``."""
        stop = self.phase.stop
        if self.state is State.DRAINING and stop is not None and stop.deadline is not None:
            deadline = policy.shortened_deadline(self.rt.clock(), stop.deadline, cap_s)
            self._amend(stop=replace(stop, deadline=deadline))

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do for this process, if ever."""
        if self.state in (State.BACKOFF, State.PARKED):
            return self.next_start_at
        if self.state is State.STARTING and self.started_at is not None:
            return self.started_at + self.options.start_timeout_s
        if self.state is State.DRAINING:
            return self._drain_deadline()
        return None

    def _drain_deadline(self) -> float | None:
        stop = self.phase.stop
        return stop.deadline if stop is not None and self.state is State.DRAINING else None

    def drain_remaining(self, now: float) -> float:
        deadline = self._drain_deadline()
        return 0.0 if deadline is None else max(0.0, deadline - now)

    def kill(self, reason: str) -> None:
        if self.child is None or self.state not in (State.STARTING, State.READY, State.DRAINING):
            return
        if self.state is State.DRAINING and self.active_jobs:
            self.rt.metrics.drain_killed_jobs.inc(self.active_jobs)
            self.rt.metrics.calls_cut.labels("drain_timeout").inc(self.active_jobs)
            log.error("drain_timeout process=%s jobs_cut=%d", self.name, self.active_jobs)
        log.warning("process_killed process=%s reason=%s", self.name, reason)
        self._set(State.STOPPING, stop=StopOrder(reason, signal.SIGKILL))
        self.child.kill_tree()

    async def tick(self, now: float, *, may_spawn: bool = True,
                   table: ProcTable | None = None) -> None:
        """Level-triggered: act on whatever deadline has passed (``table``: this tick's
        look at /proc, shared by every process)."""
        st, deadline = self.state, self._drain_deadline()
        if st is State.STARTING and self.started_at is not None \
                and now - self.started_at >= self.options.start_timeout_s:
            self.kill("start_timeout")
        elif deadline is not None and now >= deadline:
            self.kill("drain_timeout")
        elif st is State.READY:
            self.record = policy.reset_if_stable(self.record, self.ready_since, now,
                                                 self.options.policy)
        elif st in (State.BACKOFF, State.PARKED) and self.next_start_at is not None \
                and now >= self.next_start_at and (may_spawn or st is State.PARKED):
            await self.start()
        if self.child is not None and self.running:
            self.child.refresh_tree(table)

    def apply_sample(self, pss_bytes: int, cpu_total_s: float, samples: int) -> None:
        """Record one resource sample (tree PSS); drain-restart over the soft limit (the
        ``rss_soft_limit_mb`` key compares PSS), kill over the hard one."""
        self.pss_bytes = pss_bytes
        if cpu_total_s > self._cpu_seen:
            if self.owns_metrics:
                self.rt.metrics.process_cpu.labels(self.name).inc(cpu_total_s - self._cpu_seen)
            self.cpu_s += cpu_total_s - self._cpu_seen
            self._cpu_seen = cpu_total_s
        self.publish_metrics()
        o = self.options
        self._rss_streak, verdict = policy.rss_verdict(
            self._rss_streak, pss_bytes, o.rss_soft_limit_mb, o.rss_hard_limit_mb, samples)
        if verdict == "kill":
            log.error("rss_hard_limit process=%s pss_bytes=%d", self.name, pss_bytes)
            self.kill("rss")
        elif verdict == "drain" and self.state in (State.READY, State.STARTING):
            log.warning("rss_soft_limit process=%s pss_bytes=%d", self.name, pss_bytes)
            self.request_stop("rss", restart=True)

    def status(self) -> dict[str, Any]:
        now = self.rt.clock()
        up = self.running and self.started_at is not None
        return {
            "name": self.name, "kind": self.spec.kind, "state": self.state.value,
            "pid": self.child.pid if self.child else None,
            "uptime_s": round(now - self.started_at, 3) if up and self.started_at else 0.0,
            "restarts": self.restarts, "pss_bytes": self.pss_bytes if self.running else 0,
            "cpu_s": round(self.cpu_s, 3), "active_jobs": self.active_jobs,
            "last_exit": self.last_exit.text if self.last_exit else None,
            "worker_id": self.info.get("worker_id"), "agent_name": self.info.get("agent_name"),
            "failures": self.record.streak,
            "stop_reason": self.phase.stop.reason if self.phase.stop else None,
            "drain_left_s": round(self.drain_remaining(now), 1)
            if self.state is State.DRAINING else None,
            "config_error": self.config_error or self.rollout_error or None,
            "next_start_in_s": round(max(0.0, self.next_start_at - now), 3)
            if self.next_start_at is not None and not self.running else None,
        }
