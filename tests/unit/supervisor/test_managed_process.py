"""ManagedProcess on a fake host and a fake clock: every edge of the state table, every stop
path."""

from __future__ import annotations

import asyncio
import signal

import pytest
from unit_supervisor_helpers import MakeProc, config, ready

from voiceops.events import PROCESS_ENV
from voiceops.supervisor.process import SPAWN_FAILED_RC, ManagedProcess
from voiceops.supervisor.state import State
from voiceops.testing.fakehandle import FakeWorld

pytestmark = pytest.mark.asyncio


async def started(world: FakeWorld, proc: ManagedProcess, *, is_ready: bool = True) -> None:
    await proc.start()
    await world.settle()
    if is_ready:
        ready(proc)


async def exit_child(world: FakeWorld, proc: ManagedProcess, rc: int) -> None:
    assert proc.child is not None
    proc.child.exit(rc)  # type: ignore[attr-defined]
    await world.settle()


async def test_start_spawns_and_ready_moves_starting_to_ready(world: FakeWorld,
                                                              make_proc: MakeProc) -> None:
    """EXITED → STARTING on spawn (the child's env names it), STARTING → READY on its ready
    event."""
    proc = make_proc()
    await started(world, proc, is_ready=False)
    child = world.host.latest("worker-0")
    assert proc.state is State.STARTING and proc.child is child
    assert child.env[PROCESS_ENV] == "worker-0"
    assert world.metric("voiceops_process_up", process="worker-0") == 1
    ready(proc, worker_id="AW_x")
    assert proc.state is State.READY and proc.info == {"worker_id": "AW_x"}
    assert proc.ready_since == world.clock.now
    assert world.metric("voiceops_process_state", process="worker-0", state="ready") == 1


async def test_ready_again_only_updates_the_worker_id(world: FakeWorld,
                                                      make_proc: MakeProc) -> None:
    """A second ready (a LiveKit re-registration) keeps READY and records the new worker id."""
    proc = make_proc()
    await started(world, proc)
    since = proc.ready_since
    world.clock.advance(5)
    ready(proc, worker_id="AW_2")
    assert (proc.state, proc.info["worker_id"], proc.ready_since) == (State.READY, "AW_2", since)


async def test_start_timeout_kills_then_backs_off(world: FakeWorld, make_proc: MakeProc) -> None:
    """STARTING → STOPPING at start_timeout_s (SIGKILL to the tree), STOPPING → EXITED → BACKOFF."""
    proc = make_proc()
    await started(world, proc, is_ready=False)
    child = world.host.latest("worker-0")
    world.clock.advance(29.9)
    await proc.tick(world.clock())
    assert proc.state is State.STARTING
    assert proc.next_deadline() == pytest.approx(world.clock.now + 0.1)
    world.clock.advance(0.1)
    await proc.tick(world.clock())
    assert child.signals == [signal.SIGKILL]
    await world.settle()
    assert proc.state is State.BACKOFF
    assert proc.last_exit is not None and proc.last_exit.text == "start_timeout(SIGKILL)"
    assert proc.record.streak == 1


async def test_backoff_waits_its_delay_then_starts(world: FakeWorld, make_proc: MakeProc) -> None:
    """READY → EXITED → BACKOFF on a crash; BACKOFF → STARTING once the delay has passed."""
    proc = make_proc()
    await started(world, proc)
    await exit_child(world, proc, 1)
    assert proc.state is State.BACKOFF and proc.child is None
    due = proc.next_start_at
    assert due is not None and 1.0 <= due - world.clock.now <= 1.0 + 1e-9  # first failure: base
    assert proc.status()["next_start_in_s"] == pytest.approx(due - world.clock.now)
    await proc.tick(due - 0.01)
    assert proc.state is State.BACKOFF
    await proc.tick(due, may_spawn=False)  # the pool forbids new workers: BACKOFF waits
    assert proc.state is State.BACKOFF
    await proc.tick(due)
    assert proc.state is State.STARTING and len(world.host.children) == 2
    assert proc.restarts == 1
    assert world.metric("voiceops_process_restarts_total", process="worker-0",
                        reason="crash") == 1


async def test_crash_while_starting_counts_as_a_failure(world: FakeWorld,
                                                        make_proc: MakeProc) -> None:
    """STARTING → EXITED on an early crash, then BACKOFF with a failure counted."""
    proc = make_proc()
    await started(world, proc, is_ready=False)
    await exit_child(world, proc, 3)
    assert proc.state is State.BACKOFF and proc.record.streak == 1
    assert proc.last_exit is not None and proc.last_exit.text == "crash(3)"


async def test_repeated_failures_park_then_retry_after_cooldown(world: FakeWorld,
                                                                make_proc: MakeProc) -> None:
    """Three failures in the window: EXITED → PARKED (crashloop gauge 1); PARKED → STARTING after
    the cool-down, even when the pool forbids spawns."""
    proc = make_proc()
    await started(world, proc)
    for _ in range(2):
        await exit_child(world, proc, 1)
        assert proc.state is State.BACKOFF
        assert proc.next_start_at is not None
        world.clock.now = proc.next_start_at
        await proc.tick(world.clock())
        ready(proc)
    await exit_child(world, proc, 1)
    assert proc.state is State.PARKED
    assert world.metric("voiceops_process_crashloop", process="worker-0") == 1
    assert proc.next_start_at is not None
    assert 50.0 <= proc.next_start_at - world.clock.now <= 55.0  # cool-down + ≤10 % jitter
    world.clock.now = proc.next_start_at
    await proc.tick(world.clock(), may_spawn=False)
    assert proc.state is State.STARTING
    assert world.metric("voiceops_process_crashloop", process="worker-0") == 0


async def test_stable_ready_forgets_failures(world: FakeWorld, make_proc: MakeProc) -> None:
    """After stable_after_s in READY the failure streak resets, so the next crash backs off from
    base."""
    proc = make_proc()
    await started(world, proc)
    await exit_child(world, proc, 1)
    assert proc.next_start_at is not None
    world.clock.now = proc.next_start_at
    await proc.tick(world.clock())
    ready(proc)
    world.clock.advance(119)
    await proc.tick(world.clock())
    assert proc.record.streak == 1
    world.clock.advance(1)
    await proc.tick(world.clock())
    assert proc.record.streak == 0


async def test_config_error_holds_until_asked(world: FakeWorld, make_proc: MakeProc) -> None:
    """Exit 78: EXITED → PARKED with no retry time and the child's own error line; a restart
    request moves PARKED → STARTING."""
    proc = make_proc()
    await started(world, proc, is_ready=False)
    child = world.host.latest("worker-0")
    child.say("booting", "voiceops-worker: letta.base_url: not a URL")
    await exit_child(world, proc, 78)
    assert proc.state is State.PARKED and proc.next_start_at is None
    assert proc.next_deadline() is None
    assert proc.config_error == "letta.base_url: not a URL"
    assert proc.status()["config_error"] == "letta.base_url: not a URL"
    proc.request_stop("manual", restart=True)
    await world.settle()
    assert proc.state is State.STARTING and proc.config_error == ""


async def test_graceful_stop_sends_one_sigterm_and_restarts_at_once(
        world: FakeWorld, make_proc: MakeProc) -> None:
    """READY → DRAINING with one SIGTERM (a second request only shortens the budget); DRAINING →
    EXITED → STARTING with no delay."""
    proc = make_proc()
    await started(world, proc)
    child = world.host.latest("worker-0")
    proc.on_jobs(2)
    proc.request_stop("manual", restart=True)
    assert proc.state is State.DRAINING and child.signals == [signal.SIGTERM]
    assert proc.next_deadline() == world.clock.now + 60.0
    proc.request_stop("manual", restart=True, budget_s=10.0)
    assert child.signals == [signal.SIGTERM]
    assert proc.drain_remaining(world.clock.now) == 10.0
    assert proc.status()["stop_reason"] == "manual"
    await exit_child(world, proc, 0)
    assert proc.state is State.STARTING and proc.record.streak == 0
    assert proc.last_exit is not None and proc.last_exit.kind == "manual"
    assert world.metric("voiceops_process_restarts_total", process="worker-0",
                        reason="manual") == 1


async def test_drain_timeout_kills_and_counts_cut_calls(world: FakeWorld,
                                                       make_proc: MakeProc) -> None:
    """DRAINING → STOPPING when the budget runs out: SIGKILL, the live jobs counted as cut;
    STOPPING → EXITED → STARTING."""
    proc = make_proc()
    await started(world, proc)
    child = world.host.latest("worker-0")
    proc.on_jobs(3)
    proc.request_stop("reload", restart=True)
    world.clock.advance(60)
    await proc.tick(world.clock())
    assert proc.state is State.STOPPING and child.signals == [signal.SIGTERM, signal.SIGKILL]
    assert proc.status()["stop_reason"] == "drain_timeout"
    assert world.metric("voiceops_drain_killed_jobs_total") == 3
    assert world.metric("voiceops_calls_cut_total", reason="drain_timeout") == 3
    await world.settle()
    assert proc.state is State.STARTING
    assert proc.last_exit is not None and proc.last_exit.text == "drain_timeout(SIGKILL)"


async def test_second_signal_shortens_the_drain(world: FakeWorld, make_proc: MakeProc) -> None:
    """shorten() cuts a drain's remaining budget to the cap, never lengthens it."""
    proc = make_proc()
    await started(world, proc)
    proc.request_stop("shutdown", restart=False)
    proc.shorten(10.0)
    assert proc.drain_remaining(world.clock.now) == 10.0
    proc.shorten(30.0)
    assert proc.drain_remaining(world.clock.now) == 10.0


async def test_final_stop_stays_exited(world: FakeWorld, make_proc: MakeProc) -> None:
    """A stop without restart: DRAINING → EXITED and it stays there; a later start is a no-op."""
    proc = make_proc()
    await started(world, proc)
    proc.request_stop("scale", restart=False)
    await exit_child(world, proc, 0)
    assert proc.state is State.EXITED and proc.final
    await proc.start()
    assert proc.state is State.EXITED and len(world.host.children) == 1
    assert proc.exited.is_set()


async def test_stop_while_starting_drains(world: FakeWorld, make_proc: MakeProc) -> None:
    """STARTING → DRAINING: a child that has not reported ready still gets exactly one SIGTERM."""
    proc = make_proc()
    await started(world, proc, is_ready=False)
    proc.request_stop("shutdown", restart=False)
    assert proc.state is State.DRAINING
    assert world.host.latest("worker-0").signals == [signal.SIGTERM]


async def test_stop_during_spawn_is_applied_once_spawned(world: FakeWorld,
                                                        make_proc: MakeProc) -> None:
    """A stop that arrives before the spawn returns waits in STARTING and drains the new child."""
    proc = make_proc()
    world.host.spawn_gate = asyncio.Event()
    start = asyncio.ensure_future(proc.start())
    await world.host.at_gate.wait()
    assert proc.state is State.STARTING
    proc.request_stop("shutdown", restart=False, budget_s=5.0)
    assert proc.phase.pending is not None and proc.child is None
    world.host.spawn_gate.set()
    await start
    assert proc.state is State.DRAINING and proc.phase.pending is None
    assert world.host.latest("worker-0").signals == [signal.SIGTERM]
    assert proc.drain_remaining(world.clock.now) == 5.0
    assert proc.final


async def test_spawn_failure_backs_off(world: FakeWorld, make_proc: MakeProc) -> None:
    """A spawn that fails (no such program): STARTING → EXITED with exit 127, then BACKOFF."""
    world.host.fail_spawn.add("worker-0")
    proc = make_proc()
    await proc.start()
    assert proc.state is State.BACKOFF
    assert proc.last_exit is not None and proc.last_exit.returncode == SPAWN_FAILED_RC


async def test_stop_in_backoff_or_parked(world: FakeWorld, make_proc: MakeProc) -> None:
    """BACKOFF → EXITED on a final stop; PARKED → EXITED too; neither keeps a start time."""
    proc = make_proc()
    await started(world, proc)
    await exit_child(world, proc, 1)
    proc.request_stop("shutdown", restart=False)
    assert proc.state is State.EXITED and proc.next_start_at is None
    proc2 = make_proc(config(crashloop_failures=1), index=1)
    await started(world, proc2)
    await exit_child(world, proc2, 1)
    assert proc2.state is State.PARKED
    proc2.request_stop("shutdown", restart=False)
    assert proc2.state is State.EXITED and proc2.next_deadline() is None


async def test_restart_request_in_backoff_starts_now(world: FakeWorld,
                                                     make_proc: MakeProc) -> None:
    """BACKOFF → STARTING at once on a restart request, without waiting for the delay."""
    proc = make_proc()
    await started(world, proc)
    await exit_child(world, proc, 1)
    proc.request_stop("manual", restart=True)
    await world.settle()
    assert proc.state is State.STARTING
    assert world.metric("voiceops_process_restarts_total", process="worker-0",
                        reason="manual") == 1


async def test_restart_never_stays_exited(world: FakeWorld, make_proc: MakeProc) -> None:
    """restart=never: an unexpected exit leaves it EXITED with nothing scheduled."""
    proc = make_proc(config(restart="never"))
    await started(world, proc)
    await exit_child(world, proc, 1)
    assert proc.state is State.EXITED and not proc.final and proc.next_deadline() is None


async def test_unrequested_sigkill_is_oom_only_when_the_kernel_counted_one(
        world: FakeWorld, make_proc: MakeProc) -> None:
    """A SIGKILL nobody here sent: ``oom`` if the OOM kill count rose meanwhile, else ``signal``."""
    world.host.oom_kills = 4
    proc = make_proc()
    await started(world, proc)
    world.host.oom_kills = 5
    await exit_child(world, proc, -signal.SIGKILL)
    assert proc.last_exit is not None and proc.last_exit.kind == "oom"
    assert proc.next_start_at is not None
    world.clock.now = proc.next_start_at
    await proc.tick(world.clock())
    ready(proc)
    await exit_child(world, proc, -signal.SIGKILL)
    assert proc.last_exit is not None and proc.last_exit.kind == "signal"


async def test_hard_memory_limit_kills(world: FakeWorld, make_proc: MakeProc) -> None:
    """READY → STOPPING over the hard PSS limit; the exit is an ``rss`` restart, not a failure."""
    proc = make_proc(config(rss_hard_limit_mb=100))
    await started(world, proc)
    proc.apply_sample(101 * 2**20, 1.5, samples=3)
    assert proc.state is State.STOPPING and proc.status()["stop_reason"] == "rss"
    assert world.metric("voiceops_process_cpu_seconds_total", process="worker-0") == 1.5
    await world.settle()
    assert proc.state is State.STARTING and proc.record.streak == 0


async def test_soft_memory_limit_drains_after_the_streak(world: FakeWorld,
                                                         make_proc: MakeProc) -> None:
    """Over the soft limit for ``samples`` samples in a row: a graceful ``rss`` drain."""
    proc = make_proc(config(rss_soft_limit_mb=100))
    await started(world, proc)
    proc.apply_sample(101 * 2**20, 0.0, samples=2)
    assert proc.state is State.READY
    proc.apply_sample(101 * 2**20, 0.0, samples=2)
    assert proc.state is State.DRAINING and proc.status()["stop_reason"] == "rss"


async def test_orphans_left_behind_are_counted(world: FakeWorld, make_proc: MakeProc) -> None:
    """Descendants the child left behind (killed by settle) add to voiceops_orphans_killed_total."""
    proc = make_proc()
    await started(world, proc)
    world.host.latest("worker-0").orphans = 2
    await exit_child(world, proc, 1)
    assert world.metric("voiceops_orphans_killed_total") == 2


async def test_on_exit_and_tick_refresh_the_tree(world: FakeWorld, make_proc: MakeProc) -> None:
    """Each exit is reported to on_exit; a tick refreshes a running child's tree."""
    seen: list[tuple[str, str]] = []
    proc = make_proc(on_exit=lambda name, reason: seen.append((name, reason.kind)))
    await started(world, proc)
    await proc.tick(world.clock())
    assert world.host.latest("worker-0").tree_refreshes == 1
    await exit_child(world, proc, 1)
    assert seen == [("worker-0", "crash")]


async def test_kill_is_ignored_when_not_running(world: FakeWorld, make_proc: MakeProc) -> None:
    """kill() on an EXITED process does nothing (no transition, no error)."""
    proc = make_proc()
    proc.kill("manual")
    assert proc.state is State.EXITED


async def test_status_reports_uptime_and_pid(world: FakeWorld, make_proc: MakeProc) -> None:
    """status() shows the pid, uptime on the injected clock, jobs and no stop reason while READY."""
    proc = make_proc()
    await started(world, proc)
    world.clock.advance(12.5)
    proc.on_jobs(1)
    st = proc.status()
    assert (st["state"], st["pid"], st["uptime_s"], st["active_jobs"], st["stop_reason"]) == \
        ("ready", world.host.latest("worker-0").pid, 12.5, 1, None)
