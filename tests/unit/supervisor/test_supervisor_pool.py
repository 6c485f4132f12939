"""The pool on a fake host and a fake clock: scaling, standby takeover, rollouts, stops, views."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from unit_supervisor_helpers import CONFIG, config, ready

from voiceops.config import Config, ProxyConfig
from voiceops.events import Jobs, Ready
from voiceops.supervisor.pool import ACTIVATE_SIGNAL, Pool
from voiceops.supervisor.state import State
from voiceops.testing.fakehandle import FakeWorld

pytestmark = pytest.mark.asyncio
MakePool = Callable[..., Pool]


@pytest.fixture
def make_pool(world: FakeWorld) -> MakePool:
    def make(cfg: Config = CONFIG, **kw: Any) -> Pool:
        return Pool(cfg, world.runtime(), **kw)
    return make


@pytest.fixture
async def pool(world: FakeWorld, make_pool: MakePool) -> AsyncIterator[Pool]:
    """Two workers and the proxy, all READY."""
    p = make_pool()
    p.start()
    await tick(world, p)
    ready_all(p)
    return p


async def tick(world: FakeWorld, pool: Pool) -> None:
    await pool.tick(world.clock())
    await world.settle()


def ready_all(pool: Pool) -> None:
    for proc in pool.everything():
        if proc.state is State.STARTING:
            ready(proc, standby=proc.name.startswith("standby-"))


def names(pool: Pool, state: State | None = None) -> list[str]:
    return sorted(p.name for p in pool.procs.values() if state is None or p.state is state)


async def test_start_spawns_the_proxy_then_the_workers(world: FakeWorld,
                                                       make_pool: MakePool) -> None:
    """start() spawns the proxy; the first tick adds the desired workers; READY majority makes the
    pool ready."""
    pool = make_pool()
    pool.start()
    await world.settle()
    assert [c.spec.name for c in world.host.children] == ["proxy"]
    await tick(world, pool)
    assert names(pool) == ["proxy", "worker-0", "worker-1"]
    assert not pool.is_ready()
    ready_all(pool)
    assert pool.is_ready() and pool.min_ready() == 1
    await tick(world, pool)
    assert world.metric("voiceops_pool_ready_workers") == 2
    assert world.metric("voiceops_pool_desired_workers") == 2


async def test_scale_up_takes_the_lowest_free_index(world: FakeWorld, pool: Pool) -> None:
    """Scaling back up after worker-0 was scaled away fills worker-0 first; the new one owns its
    metrics."""
    pool.procs["worker-1"].on_jobs(1)
    pool.scale(1)
    await tick(world, pool)
    assert names(pool) == ["proxy", "worker-1"]
    (old,) = pool.retiring
    pool.scale(3)
    await tick(world, pool)
    assert names(pool) == ["proxy", "worker-0", "worker-1", "worker-2"]
    assert not old.owns_metrics and pool.procs["worker-0"].owns_metrics


async def test_scale_down_drains_the_idlest_and_forgets_it_once_exited(
        world: FakeWorld, pool: Pool) -> None:
    """Scale-down drains the worker with the fewest jobs; once it exits it leaves the pool and its
    gauges go."""
    pool.procs["worker-0"].on_jobs(2)
    pool.scale(1)
    await tick(world, pool)
    assert names(pool) == ["proxy", "worker-0"]
    (gone,) = pool.retiring
    assert gone.name == "worker-1" and gone.state is State.DRAINING and gone.final
    assert world.host.latest("worker-1").signals == [signal.SIGTERM]
    assert "1 draining" in pool.summary()  # a retiring worker still shows while it drains
    world.host.latest("worker-1").exit(0)
    await world.settle()
    await tick(world, pool)
    assert pool.retiring == []
    assert world.metric("voiceops_process_up", process="worker-1") is None
    assert len(world.host.alive("worker-1")) == 0


async def test_standby_takes_over_a_dead_workers_slot(
    world: FakeWorld, make_pool: MakePool
) -> None:
    """A worker crash with a READY standby: SIGUSR2 to the standby, which becomes that worker; a
    new standby is built."""
    pool = make_pool(config(standby=1))
    pool.start()
    await tick(world, pool)
    ready_all(pool)
    standby = pool.standbys["standby-0"]
    sb_child = world.host.latest("standby-0")
    world.host.latest("worker-0").exit(1)
    await world.settle()
    assert pool.procs["worker-0"] is standby and standby.name == "worker-0"
    assert sb_child.signals == [ACTIVATE_SIGNAL] and not standby.standby
    assert standby.restarts == 1 and standby.record.streak == 1
    assert world.metric("voiceops_process_restarts_total", process="worker-0",
                        reason="crash") == 1
    await tick(world, pool)
    assert list(pool.standbys) == ["standby-0"] and pool.standbys["standby-0"] is not standby
    assert pool.standbys["standby-0"].state is State.STARTING
    assert len(world.host.alive("worker-0")) == 0  # the dead one was not restarted


async def test_no_ready_standby_means_an_ordinary_backoff(
    world: FakeWorld, make_pool: MakePool
) -> None:
    """A worker crash while the standby is still starting: the worker backs off as usual."""
    pool = make_pool(config(standby=1))
    pool.start()
    await tick(world, pool)
    ready(pool.procs["worker-0"])
    world.host.latest("worker-0").exit(1)
    await world.settle()
    assert pool.procs["worker-0"].state is State.BACKOFF
    assert pool.standbys["standby-0"].state is State.STARTING


async def test_rollout_swaps_in_the_replacement_once_ready(world: FakeWorld, pool: Pool) -> None:
    """restart(): a surge runs beside the old worker; when READY it takes the slot and the old one
    drains."""
    old = pool.procs["worker-0"]
    assert pool.restart("worker-0") == ["worker-0"]
    await tick(world, pool)
    surge = pool.surges["worker-0"]
    assert surge.state is State.STARTING and pool.procs["worker-0"] is old
    assert [i.get("role") for i in pool.process_status() if i.get("role")] == ["replacement"]
    ready(surge)
    await tick(world, pool)
    assert pool.procs["worker-0"] is surge and old in pool.retiring
    assert old.state is State.DRAINING and surge.restarts == 1
    assert world.metric("voiceops_process_restarts_total", process="worker-0",
                        reason="manual") == 1


async def test_failed_rollout_keeps_the_old_process(world: FakeWorld, pool: Pool) -> None:
    """A replacement that exits with a config error is dropped; the old process serves and says
    why."""
    old = pool.procs["worker-0"]
    pool.restart("worker-0", "reload")
    await tick(world, pool)
    surge_child = world.host.latest("worker-0")
    surge_child.say("voiceops-worker: letta.base_url: not a URL")
    surge_child.exit(78)
    await world.settle()
    await tick(world, pool)
    assert pool.procs["worker-0"] is old and old.state is State.READY
    assert pool.surges == {}
    assert old.rollout_error.endswith("letta.base_url: not a URL")


async def test_rollout_without_surge_restarts_in_place(
    world: FakeWorld, make_pool: MakePool
) -> None:
    """In the sandbox the emulator (fixed port, no surge) restarts by drain and respawn; workers
    wait for it to be READY."""
    pool = make_pool(sandbox=True)
    pool.start()
    await tick(world, pool)
    assert names(pool) == ["emulator", "letta", "proxy"]  # no worker before the emulator is up
    ready(pool.procs["emulator"])
    await tick(world, pool)
    assert names(pool) == ["emulator", "letta", "proxy", "worker-0", "worker-1"]
    emulator = pool.procs["emulator"]
    pool.restart("emulator")
    await tick(world, pool)
    assert emulator.state is State.DRAINING and pool.surges == {}
    world.host.latest("emulator").exit(0)
    await world.settle()
    assert emulator.state is State.STARTING and len(world.host.alive("emulator")) == 1


async def test_apply_config_rolls_changed_workers_and_retires_the_proxy(
        world: FakeWorld, pool: Pool) -> None:
    """A new worker command rolls every worker; a disabled proxy is retired; the count follows."""
    cfg = replace(config(command=("other-worker",), count=1), proxy=ProxyConfig(enabled=False))
    changed = pool.apply_config(cfg)
    assert changed == ["worker-0", "worker-1"]
    assert "proxy" not in pool.procs and pool.procs and pool.retiring[0].name == "proxy"
    assert pool.desired_workers == 1
    await tick(world, pool)
    assert len(pool.surges) <= 1  # one rollout at a time
    assert world.host.latest("proxy").signals == [signal.SIGTERM]


async def test_drain_replaces_the_worker_after_it_exits(world: FakeWorld, pool: Pool) -> None:
    """drain(): one SIGTERM; after the exit the same slot starts again."""
    pool.drain("worker-1")
    proc = pool.procs["worker-1"]
    assert proc.state is State.DRAINING
    world.host.latest("worker-1").exit(0)
    await world.settle()
    assert proc.state is State.STARTING and len(world.host.alive("worker-1")) == 1


async def test_shutdown_stops_each_kind_with_a_capped_budget(world: FakeWorld, pool: Pool) -> None:
    """begin_shutdown + stop_kind: one SIGTERM per worker, the budget capped, nothing respawned;
    progress names who is left."""
    pool.begin_shutdown()
    procs = pool.stop_kind("worker", budget_cap_s=20.0)
    assert sorted(p.name for p in procs) == ["worker-0", "worker-1"]
    assert all(p.drain_remaining(world.clock.now) == 20.0 for p in procs)
    assert pool.next_deadline() == world.clock.now + 20.0
    pool.procs["worker-0"].on_jobs(1)
    assert pool.stop_progress(world.clock.now) == \
        "waiting for proxy, worker-0 (1 call), worker-1 (0 calls); 20 s left"
    for name in ("worker-0", "worker-1"):
        world.host.latest(name).exit(0)
    await world.settle()
    await tick(world, pool)
    assert names(pool, State.EXITED) == ["worker-0", "worker-1"]
    assert len(world.host.children) == 3 and not pool.is_ready()
    pool.shorten(5.0)  # nothing left draining: a no-op
    assert pool.summary().startswith("stopping: waiting for proxy")


async def test_crash_looping_majority_makes_the_pool_unhealthy(world: FakeWorld,
                                                               make_pool: MakePool) -> None:
    """More than half of the workers parked: the pool is unhealthy and spawns no workers."""
    pool = make_pool(config(crashloop_failures=1))
    pool.start()
    await tick(world, pool)
    ready_all(pool)
    for name in ("worker-0", "worker-1"):
        world.host.latest(name).exit(1)
    await world.settle()
    assert pool.parked_workers() == 2 and pool.unhealthy()
    assert "pool unhealthy" in pool.summary() and not pool.is_ready()
    pool.scale(3)
    await tick(world, pool)
    assert names(pool) == ["proxy", "worker-0", "worker-1"]


async def test_events_are_routed_by_pid_then_by_name(world: FakeWorld, pool: Pool) -> None:
    """A jobs event reaches the process whose child has the sender's pid; an unknown one is
    ignored."""
    child = world.host.latest("worker-1")
    pool.on_event(Jobs(process="worker-0", pid=child.pid, active_jobs=4))
    assert pool.procs["worker-1"].active_jobs == 4 and pool.procs["worker-0"].active_jobs == 0
    pool.on_event(Jobs(process="nobody", pid=1, active_jobs=9))
    assert pool.summary().endswith("4 calls")
    pool.on_event(Ready(process="proxy", pid=1))  # READY already: stays READY
    assert pool.procs["proxy"].state is State.READY


async def test_orphan_sweep_counts_kills(world: FakeWorld, pool: Pool) -> None:
    """Each tick sweeps for orphans (not during a spawn); kills add to
    voiceops_orphans_killed_total."""
    world.host.orphans = 3
    sweeps = world.host.sweeps
    await tick(world, pool)
    assert world.host.sweeps == sweeps + 1
    assert world.metric("voiceops_orphans_killed_total") == 3


async def test_pool_status_and_backoff_deadline(world: FakeWorld, pool: Pool) -> None:
    """pool_status counts; next_deadline is the earliest backoff end among processes."""
    world.host.latest("worker-0").exit(1)
    await world.settle()
    due = pool.procs["worker-0"].next_start_at
    assert due is not None and pool.next_deadline() == due
    assert pool.pool_status() == {"desired": 2, "ready": 1, "parked": 0, "unhealthy": False,
                                  "min_ready": 1}
    assert "1 backoff" in pool.summary()


async def test_scale_to_zero_retires_workers_their_surge_and_the_standby(
        world: FakeWorld, make_pool: MakePool) -> None:
    """Scale to 0 mid-rollout: the workers, the replacement and the standby all drain as
    retiring."""
    pool = make_pool(config(standby=1))
    pool.start()
    await tick(world, pool)
    ready_all(pool)
    assert "1/1 standby" in pool.summary()
    pool.restart("worker-0")
    await tick(world, pool)
    assert "worker-0" in pool.surges
    pool.scale(0)
    await tick(world, pool)
    assert pool.surges == {} and pool.standbys == {} and names(pool) == ["proxy"]
    assert sorted(p.name for p in pool.retiring) == \
        ["standby-0", "worker-0", "worker-0", "worker-1"]
    roles = {i.get("role") for i in pool.process_status() if i["kind"] == "worker"}
    assert roles == {"retiring"}
    assert all(c.signals == [signal.SIGTERM] for c in world.host.children
               if c.spec.name != "proxy")


async def test_no_takeover_during_shutdown(world: FakeWorld, make_pool: MakePool) -> None:
    """Once the pool is stopping, a dead worker keeps its own (backoff) handling; the standby stays
    a standby."""
    pool = make_pool(config(standby=1))
    pool.start()
    await tick(world, pool)
    ready_all(pool)
    pool.begin_shutdown()
    world.host.latest("worker-0").exit(1)
    await world.settle()
    assert pool.procs["worker-0"].state is State.BACKOFF
    assert pool.standbys["standby-0"].standby
    assert world.host.latest("standby-0").signals == []


async def test_a_starting_replacements_ready_event_reaches_it_by_name(
        world: FakeWorld, pool: Pool) -> None:
    """A ready event naming a slot whose replacement is starting goes to the replacement."""
    pool.restart("worker-1")
    await tick(world, pool)
    pool.on_event(Ready(process="worker-1", pid=1))
    assert pool.surges["worker-1"].state is State.READY


async def test_reload_rebuilds_a_changed_standby(world: FakeWorld, make_pool: MakePool) -> None:
    """apply_config: a standby whose spec changed is retired and a new one is built."""
    pool = make_pool(config(standby=1))
    pool.start()
    await tick(world, pool)
    old = pool.standbys["standby-0"]
    pool.apply_config(config(standby=1, command=("other-worker",)))
    assert old in pool.retiring and old.final
    await tick(world, pool)
    assert pool.standbys["standby-0"].spec.argv == ("other-worker",)
