"""Restart policy: backoff, crash loops, parking, exit classification (pure functions)."""

from __future__ import annotations

import random
import signal

import pytest

from voiceops.config import WorkersConfig
from voiceops.supervisor import policy
from voiceops.supervisor.policy import (
    Action,
    ExitReason,
    FailureRecord,
    RestartPolicy,
    backoff_delay_s,
    classify_exit,
    decide_restart,
)

P = RestartPolicy(backoff_base_s=1.0, backoff_max_s=60.0, stable_after_s=120.0,
                  crashloop_failures=3, crashloop_window_s=100.0, crashloop_cooldown_s=50.0)


class FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_from_config_copies_workers_and_caps_listeners() -> None:
    """The policy takes [workers] values; a lower cap (the proxy's) applies but never below base."""
    w = WorkersConfig(restart="on-failure", backoff_base_s=2.0, backoff_max_s=60.0,
                      crashloop_failures=7)
    p = RestartPolicy.from_config(w)
    assert (p.restart, p.backoff_base_s, p.backoff_max_s, p.crashloop_failures) == \
        ("on-failure", 2.0, 60.0, 7)
    assert RestartPolicy.from_config(w, backoff_max_s=5.0).backoff_max_s == 5.0
    assert RestartPolicy.from_config(w, backoff_max_s=1.0).backoff_max_s == 2.0


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0),
                                                    (7, 60.0), (50, 60.0)])
def test_backoff_ceiling_doubles_then_caps(failures: int, ceiling: float) -> None:
    """The jitter range is [base, min(max, base*2**(n-1))]."""
    assert backoff_delay_s(failures, 1.0, 60.0, FixedRng(0.0)) == 1.0
    assert backoff_delay_s(failures, 1.0, 60.0, FixedRng(1.0)) == pytest.approx(ceiling)


def test_backoff_jitter_stays_in_bounds() -> None:
    """Random delays never leave the range and are actually spread out."""
    rng = random.Random(42)
    delays = [backoff_delay_s(5, 1.0, 60.0, rng) for _ in range(500)]
    assert all(1.0 <= d <= 16.0 for d in delays)
    assert max(delays) - min(delays) > 10


@pytest.mark.parametrize("failures", [61, 62, 63, 1000, 10**9, 2**64])
def test_backoff_is_safe_for_huge_counts(failures: int) -> None:
    """Huge failure counts give the cap, never an OverflowError."""
    assert backoff_delay_s(failures, 1.0, 60.0, FixedRng(1.0)) == 60.0
    assert backoff_delay_s(failures, 1e300, 1e300, FixedRng(0.5)) == 1e300


def test_backoff_with_zero_failures_is_base() -> None:
    """Zero (or negative) failures behave like the first one."""
    assert backoff_delay_s(0, 2.0, 60.0, FixedRng(1.0)) == 2.0
    assert backoff_delay_s(-3, 2.0, 60.0, FixedRng(1.0)) == 2.0


@pytest.mark.parametrize(("rc", "sent", "stop", "kind", "text"), [
    (1, None, None, "crash", "crash(1)"),
    (0, None, None, "crash", "exit(0)"),
    (-signal.SIGSEGV, None, None, "signal", "signal(SIGSEGV)"),
    (-signal.SIGKILL, None, None, "signal", "signal(SIGKILL)"),
    (-signal.SIGKILL, signal.SIGTERM, "manual", "signal", "signal(SIGKILL)"),
    (-signal.SIGKILL, signal.SIGKILL, "drain_timeout", "drain_timeout", "drain_timeout(SIGKILL)"),
    (-signal.SIGKILL, signal.SIGKILL, "start_timeout", "start_timeout", "start_timeout(SIGKILL)"),
    (-signal.SIGKILL, signal.SIGKILL, "rss", "rss", "rss(SIGKILL)"),
    (0, signal.SIGTERM, "manual", "manual", "manual"),
    (1, signal.SIGTERM, "reload", "reload", "reload"),
    (0, signal.SIGTERM, "shutdown", "shutdown", "shutdown"),
    (-200, None, None, "signal", "signal(200)"),
])
def test_classify_exit(rc: int, sent: signal.Signals | None, stop: str | None, kind: str,
                       text: str) -> None:
    """Exit codes, signals, our own stops and unexplained SIGKILLs are told apart."""
    reason = classify_exit(rc, sent, stop)
    assert (reason.kind, reason.text) == (kind, text)


def test_sigkill_is_oom_only_when_the_kernel_counted_one() -> None:
    """An outside SIGKILL is 'signal'; with the kernel's oom_kill count risen it is 'oom'."""
    assert classify_exit(-signal.SIGKILL, None).kind == "signal"
    assert classify_exit(-signal.SIGKILL, None, oom_killed=True).text == "oom(SIGKILL)"
    assert classify_exit(-signal.SIGKILL, signal.SIGTERM, "manual", oom_killed=True).kind == "oom"
    assert classify_exit(-signal.SIGKILL, signal.SIGKILL, "rss", oom_killed=True).kind == "rss"


def test_exit_reason_labels_and_flags() -> None:
    """Shutdown counts as manual in metrics; requested reasons are never failures."""
    assert ExitReason("shutdown", 0).label == "manual"
    assert ExitReason("crash", 1).label == "crash"
    assert ExitReason("rss").requested and not ExitReason("start_timeout").requested
    assert ExitReason("crash", 0).clean and not ExitReason("crash", 2).clean


def test_unexpected_exits_back_off_with_growing_ceiling() -> None:
    """Each consecutive failure raises the streak and the delay's upper bound."""
    rec, delays = FailureRecord(), []
    policy_wide = RestartPolicy(crashloop_failures=100, crashloop_window_s=10.0)
    for i in range(5):
        d = decide_restart(ExitReason("crash", 1), rec, 1000.0 * i, policy_wide, FixedRng(1.0))
        assert d.action is Action.RESTART
        rec = d.record
        delays.append(d.delay_s)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert rec.streak == 5


def test_long_uptime_crash_still_backs_off() -> None:
    """A crash after a long (unstable-never-ready) run still counts: backoff, not an instant
    loop."""
    rec = FailureRecord(times=(), streak=3)
    d = decide_restart(ExitReason("signal", -11), rec, 10_000.0, P, FixedRng(1.0))
    assert d.action is Action.RESTART and d.delay_s == 8.0


def test_crash_loop_parks_within_window_and_not_outside() -> None:
    """K failures inside the window park; the same failures spread wider do not."""
    rec = FailureRecord()
    actions = []
    for t in (0.0, 10.0, 20.0):
        d = decide_restart(ExitReason("crash", 1), rec, t, P, FixedRng(0.0))
        rec, actions = d.record, [*actions, d.action]
    assert actions == [Action.RESTART, Action.RESTART, Action.PARK]
    rec = FailureRecord()
    for t in (0.0, 60.0, 120.0, 180.0):
        d = decide_restart(ExitReason("crash", 1), rec, t, P, FixedRng(0.0))
        rec = d.record
        assert d.action is Action.RESTART
    assert len(rec.times) <= P.crashloop_failures


def test_park_duration_is_the_cooldown_plus_bounded_jitter() -> None:
    """Parked for the cool-down, plus at most 10 %."""
    assert policy.cooldown_s(P, FixedRng(0.0)) == 50.0
    assert policy.cooldown_s(P, FixedRng(1.0)) == pytest.approx(55.0)


def test_requested_exits_restart_now_without_counting() -> None:
    """Our own restarts (manual, rss, reload...) restart at once and record no failure."""
    rec = FailureRecord(times=(1.0,), streak=1)
    for kind in ("manual", "reload", "scale", "rss", "drain_timeout"):
        d = decide_restart(ExitReason(kind, 0), rec, 5.0, P, FixedRng(1.0))
        assert (d.action, d.delay_s, d.record) == (Action.RESTART, 0.0, rec)


def test_start_timeout_is_a_failure() -> None:
    """A start timeout is our kill but the child's fault: it counts and backs off."""
    d = decide_restart(ExitReason("start_timeout", -9), FailureRecord(), 0.0, P, FixedRng(1.0))
    assert d.action is Action.RESTART and d.record.streak == 1


@pytest.mark.parametrize(("mode", "rc", "action"), [
    ("always", 0, Action.RESTART), ("always", 1, Action.RESTART),
    ("on-failure", 0, Action.STAY_EXITED), ("on-failure", 1, Action.RESTART),
    ("on-failure", -11, Action.RESTART), ("never", 1, Action.STAY_EXITED),
    ("never", 0, Action.STAY_EXITED),
])
def test_restart_modes(mode: str, rc: int, action: Action) -> None:
    """always / on-failure / never decide on unexpected exits like systemd's Restart=."""
    p = RestartPolicy(restart=mode)
    reason = classify_exit(rc, None)
    assert decide_restart(reason, FailureRecord(), 0.0, p, FixedRng(0.0)).action is action


def test_never_still_restarts_on_our_own_request() -> None:
    """restart=never governs unexpected exits only; a manual restart still restarts."""
    p = RestartPolicy(restart="never")
    assert decide_restart(ExitReason("manual", 0), FailureRecord(), 0.0, p,
                          FixedRng(0.0)).action is Action.RESTART


def test_failures_reset_only_after_stable_ready() -> None:
    """The streak survives short READY periods and clears after stable_after_s."""
    rec = FailureRecord(times=(1.0, 2.0), streak=2)
    assert policy.reset_if_stable(rec, None, 500.0, P) is rec
    assert policy.reset_if_stable(rec, 100.0, 219.0, P) is rec
    assert policy.reset_if_stable(rec, 100.0, 220.0, P) == FailureRecord()
    empty = FailureRecord()
    assert policy.reset_if_stable(empty, 0.0, 1000.0, P) is empty


def test_is_crash_loop_ignores_old_failures() -> None:
    """Failures older than the window do not count."""
    rec = FailureRecord(times=(0.0, 1.0, 2.0), streak=3)
    assert policy.is_crash_loop(rec, 50.0, P)
    assert not policy.is_crash_loop(rec, 100.5, P)


@pytest.mark.parametrize(("parked", "workers", "unhealthy"), [
    (0, 0, False), (0, 4, False), (2, 4, False), (3, 4, True), (1, 1, True), (1, 2, False)])
def test_pool_guard(parked: int, workers: int, unhealthy: bool) -> None:
    """More than half parked is unhealthy; exactly half is not."""
    assert policy.pool_unhealthy(parked, workers) is unhealthy


def test_rss_verdict_hysteresis() -> None:
    """Soft needs N samples in a row (a dip resets); hard acts at once; 0 disables."""
    mib = 1024 * 1024
    streak, verdicts = 0, []
    for rss in (150, 150, 50, 150, 150, 150):
        streak, v = policy.rss_verdict(streak, rss * mib, 100, 0, 3)
        verdicts.append(v)
    assert verdicts == [None, None, None, None, None, "drain"]
    assert policy.rss_verdict(0, 500 * mib, 100, 400, 3) == (1, "kill")
    assert policy.rss_verdict(5, 10**12, 0, 0, 3) == (0, None)


def test_pick_scale_down_prefers_unready_then_fewest_jobs() -> None:
    """Scale-down drains not-ready workers first, then those with the fewest calls."""
    cands = [("worker-0", 0, True), ("worker-1", 3, True), ("worker-2", 1, True),
             ("worker-3", 5, False), ("worker-4", 0, True), ("proxyish", 0, True)]
    assert policy.pick_scale_down(cands, 1) == ["worker-3"]
    assert policy.pick_scale_down(cands, 3) == ["worker-3", "worker-4", "worker-0"]
    assert policy.pick_scale_down(cands, 0) == []
    assert policy.pick_scale_down(cands, -1) == []


def test_shortened_deadline_never_extends() -> None:
    """A second signal can only bring the deadline closer."""
    assert policy.shortened_deadline(100.0, 700.0, 10.0) == 110.0
    assert policy.shortened_deadline(100.0, 105.0, 10.0) == 105.0
