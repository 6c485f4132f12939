"""Restart policy as pure functions: no clock, no randomness, no I/O of their own.

Callers pass ``now`` (monotonic seconds) and a :class:`random.Random`, so every decision is
reproducible in tests. Formulas:

* backoff after the n-th consecutive failure (n >= 1): ``uniform(base, min(max, base * 2**(n-1)))``
  -- full jitter above a floor of ``base`` so a restart never comes sooner than ``base``.
* crash loop: ``crashloop_failures`` failures within ``crashloop_window_s`` -> PARKED for
  ``crashloop_cooldown_s`` (plus up to 10 % jitter), then one more try.
* the failure streak resets only after ``stable_after_s`` in READY.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from enum import Enum
from typing import Final

from voiceops.config import WorkersConfig

# Stop reasons the supervisor itself sets; an exit after one of these is never a failure.
# start_timeout is ours too, but it is the child's failure: it backs off and counts.
REQUESTED_REASONS: Final = frozenset(
    {"manual", "reload", "scale", "rss", "drain_timeout", "shutdown"})
EX_CONFIG: Final = 78  # a child's own config error (it names the key): retrying cannot help
_MAX_EXPONENT: Final = 62  # 2**62 * any sane base overflows no float; beyond it use the cap
COOLDOWN_JITTER: Final = 0.1


@dataclass(frozen=True)
class RestartPolicy:
    """How one process is restarted; built from ``[workers]`` (the proxy caps backoff lower)."""

    restart: str = "always"  # always | on-failure | never
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_after_s: float = 120.0
    crashloop_failures: int = 5
    crashloop_window_s: float = 600.0
    crashloop_cooldown_s: float = 600.0

    @classmethod
    def from_config(cls, w: WorkersConfig, *, backoff_max_s: float | None = None) -> RestartPolicy:
        cap = w.backoff_max_s if backoff_max_s is None else min(backoff_max_s, w.backoff_max_s)
        return cls(restart=w.restart, backoff_base_s=w.backoff_base_s,
                   backoff_max_s=max(cap, w.backoff_base_s), stable_after_s=w.stable_after_s,
                   crashloop_failures=w.crashloop_failures,
                   crashloop_window_s=w.crashloop_window_s,
                   crashloop_cooldown_s=w.crashloop_cooldown_s)


@dataclass(frozen=True)
class ExitReason:
    """Why a process exited. ``kind`` is a restart-reason metric label (or ``shutdown``)."""

    # crash | signal | oom | config | rss | start_timeout | drain_timeout | manual | reload
    # | scale | shutdown
    kind: str
    returncode: int | None = None

    @property
    def requested(self) -> bool:
        """True when the supervisor asked for this exit (never a failure)."""
        return self.kind in REQUESTED_REASONS

    @property
    def clean(self) -> bool:
        return self.returncode == 0

    @property
    def label(self) -> str:
        """The ``voiceops_process_restarts_total{reason}`` label."""
        return "manual" if self.kind == "shutdown" else self.kind

    @property
    def text(self) -> str:
        """Human form for status and logs: ``crash(1)``, ``signal(SIGSEGV)``, ``oom(SIGKILL)``."""
        rc = self.returncode
        if rc is not None and rc < 0:
            return f"{self.kind}({_signame(-rc)})"
        if self.kind == "crash":
            return f"crash({rc})" if rc else "exit(0)"
        if self.kind == "config":
            return f"config({rc})"
        return self.kind


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def classify_exit(returncode: int, we_sent: signal.Signals | None,
                  stop_reason: str | None = None, *, oom_killed: bool = False) -> ExitReason:
    """Classify an exit. A SIGKILL we did not send is OOM only when the kernel counted an OOM
    kill meanwhile (``oom_killed``); otherwise someone else killed it: ``signal``."""
    killed = returncode == -signal.SIGKILL and we_sent != signal.SIGKILL
    if stop_reason is not None and not killed:
        return ExitReason(stop_reason, returncode)
    if killed and oom_killed:
        return ExitReason("oom", returncode)
    if returncode == EX_CONFIG:
        return ExitReason("config", returncode)
    if returncode < 0:
        return ExitReason("signal", returncode)
    return ExitReason("crash", returncode)


def backoff_delay_s(failures: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before restart after ``failures`` consecutive failures (>= 1); safe for any count."""
    exponent = max(0, failures - 1)
    cap = max(base_s, max_s)
    ceiling = cap if exponent >= _MAX_EXPONENT else min(cap, base_s * 2.0**exponent)
    return base_s + rng.random() * (ceiling - base_s)


@dataclass(frozen=True)
class FailureRecord:
    """Failure times inside the crash-loop window, and the streak that drives backoff."""

    times: tuple[float, ...] = ()
    streak: int = 0


def record_failure(rec: FailureRecord, now: float, policy: RestartPolicy) -> FailureRecord:
    recent = tuple(t for t in rec.times if now - t < policy.crashloop_window_s)
    # Keep the window bounded: only the last K failures can ever matter.
    recent = (*recent, now)[-policy.crashloop_failures:]
    return FailureRecord(times=recent, streak=rec.streak + 1)


def is_crash_loop(rec: FailureRecord, now: float, policy: RestartPolicy) -> bool:
    recent = [t for t in rec.times if now - t < policy.crashloop_window_s]
    return len(recent) >= policy.crashloop_failures


def reset_if_stable(rec: FailureRecord, ready_since: float | None, now: float,
                    policy: RestartPolicy) -> FailureRecord:
    """Forget failures once the process has been READY for ``stable_after_s``."""
    if ready_since is None or now - ready_since < policy.stable_after_s:
        return rec
    return FailureRecord() if rec != FailureRecord() else rec


class Action(str, Enum):
    RESTART = "restart"  # after ``delay_s`` (0: now)
    PARK = "park"  # crash loop: retry after ``delay_s``
    HOLD = "hold"  # its own config error: kept down until a reload or a manual restart
    STAY_EXITED = "stay_exited"


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float
    record: FailureRecord


def decide_restart(reason: ExitReason, rec: FailureRecord, now: float, policy: RestartPolicy,
                   rng: random.Random) -> Decision:
    """What to do after an exit the supervisor did not turn into a final stop."""
    if reason.requested:
        return Decision(Action.RESTART, 0.0, rec)
    if reason.kind == "config":
        return Decision(Action.HOLD, 0.0, rec)
    if policy.restart == "never" or (policy.restart == "on-failure" and reason.clean):
        return Decision(Action.STAY_EXITED, 0.0, rec)
    # Any unexpected exit counts, even a clean one under "always": a worker runs until told.
    rec = record_failure(rec, now, policy)
    if is_crash_loop(rec, now, policy):
        return Decision(Action.PARK, cooldown_s(policy, rng), rec)
    delay = backoff_delay_s(rec.streak, policy.backoff_base_s, policy.backoff_max_s, rng)
    return Decision(Action.RESTART, delay, rec)


def cooldown_s(policy: RestartPolicy, rng: random.Random) -> float:
    """Park duration: the cool-down plus up to 10 % jitter, so parked workers do not retry in
    step."""
    return policy.crashloop_cooldown_s * (1.0 + COOLDOWN_JITTER * rng.random())


def pool_unhealthy(parked_workers: int, workers: int) -> bool:
    """More than half of the workers parked: a bad deploy or config, not bad luck."""
    return workers > 0 and parked_workers * 2 > workers


def rss_verdict(streak: int, rss_bytes: int, soft_mb: int, hard_mb: int,
                samples: int) -> tuple[int, str | None]:
    """Hysteresis on tree memory (PSS): the new over-soft streak and ``kill``, ``drain`` or None."""
    mib = 1024 * 1024
    if hard_mb and rss_bytes > hard_mb * mib:
        return streak + 1, "kill"
    if not soft_mb or rss_bytes <= soft_mb * mib:
        return 0, None
    streak += 1
    return streak, ("drain" if streak >= samples else None)


def pick_scale_down(candidates: list[tuple[str, int, bool]], n: int) -> list[str]:
    """Choose ``n`` of ``(name, active_jobs, ready)`` to drain: not-ready first, then fewest jobs.

    Ties go to the highest index so the low names stay stable.
    """
    def key(c: tuple[str, int, bool]) -> tuple[bool, int, int]:
        name, jobs, ready = c
        return (ready, jobs, -_index(name))
    return [c[0] for c in sorted(candidates, key=key)[:max(0, n)]]


def _index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def shortened_deadline(now: float, deadline: float, cap_s: float) -> float:
    """A second stop signal: finish within ``cap_s`` at most, never later than already planned."""
    return min(deadline, now + cap_s)

