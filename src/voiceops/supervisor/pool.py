"""The pool of named children and its level-triggered reconcile ``tick``.

Names: ``worker-<i>`` (lowest free index on scale-up), ``proxy``, ``emulator``, and
``standby-<i>``: ``workers.standby`` warm workers, registered with LiveKit but reporting
themselves full, one of which takes the slot of a worker that dies unexpectedly (it is sent
SIGUSR2, becomes ``worker-<i>``, and the next standby is built). A restart of a
READY worker is replacement-first: the replacement (a *surge*) runs beside the old one until
it is READY, then the old one drains. One rollout at a time, so the READY count never drops
below what it was. Scale-down drains the workers with the fewest active jobs.
"""

from __future__ import annotations

import collections
import logging
import signal
from collections.abc import Iterator
from typing import Any

from voiceops.config import Config
from voiceops.events import Event, Jobs, Ready
from voiceops.supervisor import policy
from voiceops.supervisor.policy import ExitReason
from voiceops.supervisor.process import ManagedProcess, Runtime
from voiceops.supervisor.spec import (
    ChildSpec,
    Tuning,
    build_specs,
    options_for,
    standby_spec,
    worker_spec,
)
from voiceops.supervisor.state import State
from voiceops.text import plural

log = logging.getLogger("voiceops.supervisor.pool")
ACTIVATE_SIGNAL = signal.SIGUSR2  # what a standby worker takes as "take over now"
ORDER = {"emulator": 0, "letta": 0, "proxy": 1, "worker": 2}


class Pool:
    def __init__(self, cfg: Config, rt: Runtime, *, sandbox: bool = False,
                 tuning: Tuning | None = None) -> None:
        self.cfg, self.rt, self.sandbox = cfg, rt, sandbox
        self.tuning = tuning or Tuning()
        self.procs: dict[str, ManagedProcess] = {}
        self.surges: dict[str, ManagedProcess] = {}
        self._surge_reasons: dict[str, str] = {}
        self.retiring: list[ManagedProcess] = []
        self.rollout: collections.deque[tuple[str, str]] = collections.deque()
        self.standbys: dict[str, ManagedProcess] = {}
        self.desired_workers = cfg.workers.count
        self.stopping = False
        rt.takeover = self._takeover

    # --- specs -------------------------------------------------------------------------
    def _spec_for(self, name: str) -> ChildSpec | None:
        if name.startswith("worker-"):
            return worker_spec(self.cfg, int(name.split("-", 1)[1]), sandbox=self.sandbox)
        return next((s for s in build_specs(self.cfg, sandbox=self.sandbox) if s.name == name),
                    None)

    def _new(self, spec: ChildSpec, *, owns_metrics: bool = True) -> ManagedProcess:
        proc = ManagedProcess(spec, options_for(self.cfg, spec.kind, self.tuning), self.rt,
                              owns_metrics=owns_metrics)
        if owns_metrics:
            self.rt.metrics.add_process(spec.name)
            proc.publish_metrics()
        return proc

    def _add(self, spec: ChildSpec) -> None:
        for old in self.retiring:
            if old.name == spec.name:
                old.owns_metrics = False
        proc = self._new(spec)
        self.procs[spec.name] = proc
        self.rt.create_task(proc.start())

    def workers(self) -> list[ManagedProcess]:
        return [p for p in self.procs.values() if p.spec.kind == "worker"]

    def everything(self) -> Iterator[ManagedProcess]:
        yield from self.procs.values()
        yield from self.surges.values()
        yield from self.standbys.values()
        yield from self.retiring

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.rt.metrics.pool_desired.set(self.desired_workers)
        for spec in build_specs(self.cfg, sandbox=self.sandbox):
            self._add(spec)

    async def tick(self, now: float) -> None:
        """Compare desired with actual and act; idempotent, safe to call at any time."""
        may_spawn = not self.unhealthy() and not self.stopping and self._livekit_up()
        table = self.rt.host.proc_table()  # one look at /proc for the whole tick
        for proc in list(self.everything()):
            await proc.tick(now, may_spawn=may_spawn or proc.spec.kind != "worker", table=table)
        if not self.stopping:
            self._reconcile_count(may_spawn)
            self._reconcile_standby(may_spawn)
            self._advance_rollout()
        self._drop_retired()
        if not self.rt.registry.spawning:
            killed = self.rt.host.sweep_orphans(self.rt.registry.pids,
                                                self.rt.registry.groups, table)
            if killed:
                self.rt.metrics.orphans_killed.inc(killed)
                log.warning("orphans_killed process=- count=%d", killed)
        self.rt.metrics.pool_ready.set(self.ready_workers())

    def _livekit_up(self) -> bool:
        """In the sandbox, workers wait for the emulator, so they register on the first try."""
        emulator = self.procs.get("emulator")
        return emulator is None or emulator.state is State.READY

    def _reconcile_count(self, may_spawn: bool) -> None:
        names = [p.name for p in self.workers()]
        missing = self.desired_workers - len(names)
        if missing > 0 and may_spawn:
            index = 0
            for _ in range(missing):
                while f"worker-{index}" in self.procs:
                    index += 1
                self._add(worker_spec(self.cfg, index, sandbox=self.sandbox))
        elif missing < 0:
            cands = [(p.name, p.active_jobs, p.state is State.READY) for p in self.workers()]
            for name in policy.pick_scale_down(cands, -missing):
                self._retire(self.procs.pop(name), "scale")

    def _reconcile_standby(self, may_spawn: bool) -> None:
        want = self.cfg.workers.standby if self.desired_workers > 0 else 0
        missing = want - len(self.standbys)
        if missing > 0 and may_spawn:
            index = 0
            for _ in range(missing):
                while f"standby-{index}" in self.standbys:
                    index += 1
                proc = self._new(standby_spec(self.cfg, index, sandbox=self.sandbox),
                                 owns_metrics=False)
                self.standbys[proc.name] = proc
                self.rt.create_task(proc.start())
        elif missing < 0:
            for name in sorted(self.standbys, reverse=True)[:-missing]:
                self._retire(self.standbys.pop(name), "scale")

    def _takeover(self, dead: ManagedProcess, reason: ExitReason) -> bool:
        """A worker died and would restart: give its slot to a READY standby instead."""
        if self.stopping or self.procs.get(dead.name) is not dead:
            return False  # a standby, surge or retiring process: ordinary handling
        sb = next((p for p in self.standbys.values()
                   if p.state is State.READY and p.standby and p.child is not None), None)
        if sb is None:
            return False
        del self.standbys[sb.name]
        standby_name, pid = sb.name, sb.child.pid if sb.child else 0
        sb.spec = self._spec_for(dead.name) or dead.spec  # its own restarts: this slot's
        sb.record, sb.restarts, sb.standby = dead.record, dead.restarts + 1, False
        sb.ready_since = self.rt.clock()  # stability counts from the takeover
        dead.owns_metrics, sb.owns_metrics = False, True
        self.procs[dead.name] = sb
        self.rt.metrics.process_restarts.labels(dead.name, reason.label).inc()
        sb.publish_metrics()
        if sb.child is not None:
            sb.child.send(ACTIVATE_SIGNAL)
        log.warning("standby_takeover process=%s standby=%s pid=%d reason=%s", dead.name,
                    standby_name, pid, reason.text)
        self.rt.wake()  # build the next standby
        return True

    def _retire(self, proc: ManagedProcess, reason: str) -> None:
        surge = self.surges.pop(proc.name, None)
        if surge is not None:
            surge.request_stop(reason, restart=False)
            self.retiring.append(surge)
        proc.request_stop(reason, restart=False)
        self.retiring.append(proc)

    def _drop_retired(self) -> None:
        for proc in [p for p in self.retiring if p.state is State.EXITED and p.final]:
            self.retiring.remove(proc)
            if proc.owns_metrics and proc.name not in self.procs:
                self.rt.metrics.remove_process(proc.name)

    # --- rollouts ----------------------------------------------------------------------
    def _advance_rollout(self) -> None:
        for name, new in list(self.surges.items()):
            old = self.procs.get(name)
            if new.state is State.READY and old is not None:
                self._swap(old, new)
            elif old is None or new.state is State.PARKED or (
                    new.state is State.EXITED and new.last_exit is not None):
                log.error("rollout_failed process=%s state=%s config_error=%r old=serving", name,
                          new.state.value, new.config_error or "-")
                if old is not None and new.config_error:
                    old.rollout_error = (
                        f"reload not applied (old config serves): {new.config_error}")
                new.request_stop("manual", restart=False)
                self.retiring.append(self.surges.pop(name))
        while not self.surges and self.rollout:
            name, reason = self.rollout.popleft()
            if name in self.procs:
                self._begin_rollout(self.procs[name], reason)

    def _begin_rollout(self, old: ManagedProcess, reason: str) -> None:
        spec = self._spec_for(old.name) or old.spec
        old.options = options_for(self.cfg, spec.kind, self.tuning)
        old.rollout_error = ""
        if spec.surge and old.state is State.READY:
            log.info("rollout_started process=%s reason=%s", old.name, reason)
            new = self._new(spec, owns_metrics=False)
            new.restarts = old.restarts
            self.surges[old.name] = new
            self._surge_reasons[old.name] = reason
            self.rt.create_task(new.start())
            return
        old.spec = spec
        old.request_stop(reason, restart=True, budget_s=old.options.drain_timeout_s)

    def _swap(self, old: ManagedProcess, new: ManagedProcess) -> None:
        reason = self._surge_reasons.pop(old.name, "manual")
        del self.surges[old.name]
        old.owns_metrics = False
        old.request_stop(reason, restart=False)
        self.retiring.append(old)
        new.owns_metrics = True
        new.restarts += 1
        self.procs[old.name] = new
        self.rt.metrics.process_restarts.labels(new.name, reason).inc()
        new.publish_metrics()
        log.info("rollout_swapped process=%s old_pid=%s new_pid=%s", new.name,
                 old.child.pid if old.child else None, new.child.pid if new.child else None)

    def restart(self, name: str, reason: str = "manual") -> list[str]:
        names = [n for n in self.procs if name in ("all", n)]
        names.sort(key=lambda n: (ORDER[self.procs[n].spec.kind], n))
        queued = {n for n, _ in self.rollout}
        self.rollout.extend((n, reason) for n in names if n not in queued)
        self.rt.wake()
        return names

    def drain(self, name: str) -> None:
        """One SIGTERM; the drained worker is replaced once it has exited."""
        self.procs[name].request_stop("manual", restart=True)

    def scale(self, count: int) -> None:
        self.desired_workers = count
        self.rt.metrics.pool_desired.set(count)
        self.rt.wake()

    def apply_config(self, cfg: Config) -> list[str]:
        """Adopt a new config: scale, update options, roll the children whose spec changed."""
        self.cfg = cfg
        wanted = {s.name: s for s in build_specs(cfg, sandbox=self.sandbox)}
        for name, proc in list(self.procs.items()):
            if proc.spec.kind != "worker" and name not in wanted:
                self._retire(self.procs.pop(name), "reload")
        for name, spec in wanted.items():
            if name not in self.procs:
                self._add(spec)
        changed = []
        for proc in self.procs.values():
            proc.options = options_for(cfg, proc.spec.kind, self.tuning)
            # A process held by its own config error tries again: the reload may be the fix.
            if self._spec_for(proc.name) != proc.spec or proc.config_error or proc.rollout_error:
                changed.append(proc.name)
        for name in changed:
            self.restart(name, "reload")
        for name, proc in list(self.standbys.items()):  # rebuilt from the new config
            index = int(name.rsplit("-", 1)[1])
            if standby_spec(cfg, index, sandbox=self.sandbox) != proc.spec:
                self._retire(self.standbys.pop(name), "reload")
        self.scale(cfg.workers.count)
        return changed

    # --- events ------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        proc = self._route(event)
        if proc is None:
            return
        if isinstance(event, Ready):
            proc.on_ready(event)
        elif isinstance(event, Jobs):
            proc.on_jobs(event.active_jobs)

    def _route(self, event: Event) -> ManagedProcess | None:
        for proc in self.everything():
            if proc.child is not None and proc.child.pid == event.pid:
                return proc
        surge = self.surges.get(event.process)
        if surge is not None and surge.state is State.STARTING:
            return surge
        return self.procs.get(event.process)

    # --- stop --------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        self.stopping = True
        self.rollout.clear()

    def stop_kind(self, kind: str, budget_cap_s: float | None = None) -> list[ManagedProcess]:
        """One graceful stop for every process of ``kind``; returns them to wait on."""
        procs = [p for p in self.everything() if p.spec.kind == kind]
        for proc in procs:
            budget = proc.options.drain_timeout_s
            if budget_cap_s is not None:
                budget = min(budget, budget_cap_s)
            proc.request_stop("shutdown", restart=False, budget_s=budget)
        return procs

    def shorten(self, cap_s: float) -> None:
        for proc in self.everything():
            proc.shorten(cap_s)

    def next_deadline(self) -> float | None:
        """The earliest moment a process needs the reconcile loop (a backoff or park ending,
        a start or drain deadline), so the loop sleeps until then rather than a whole tick."""
        found = [d for d in (p.next_deadline() for p in self.everything()) if d is not None]
        return min(found, default=None)

    def drain_deadline_remaining(self, now: float) -> float:
        return max((p.drain_remaining(now) for p in self.everything()), default=0.0)

    # --- views -------------------------------------------------------------------------
    def ready_workers(self) -> int:
        return sum(p.state is State.READY for p in self.workers())

    def parked_workers(self) -> int:
        return sum(p.state is State.PARKED for p in self.workers())

    def unhealthy(self) -> bool:
        return policy.pool_unhealthy(self.parked_workers(), max(self.desired_workers,
                                                                 len(self.workers())))

    def min_ready(self) -> int:
        """Workers needed to call the pool ready: a majority of the desired count."""
        return (self.desired_workers + 1) // 2

    def is_ready(self) -> bool:
        proxy = self.procs.get("proxy")
        proxy_ok = proxy is None or proxy.state is State.READY
        return (not self.stopping and proxy_ok and not self.unhealthy()
                and self.ready_workers() >= self.min_ready())

    def summary(self, alerts: list[str] | None = None) -> str:
        ws = self.workers()
        parts = [f"workers {self.ready_workers()}/{self.desired_workers} ready"]
        if self.standbys:
            ready = sum(p.state is State.READY for p in self.standbys.values())
            parts.append(f"{ready}/{len(self.standbys)} standby")
        for state in (State.STARTING, State.DRAINING, State.BACKOFF, State.PARKED):
            n = sum(p.state is state for p in ws) + (
                sum(p.state is state for p in self.retiring) if state is State.DRAINING else 0)
            if n:
                parts.append(f"{n} {state.value}")
        text = ", ".join(parts)
        if self.unhealthy():
            text += " (pool unhealthy: crash loops)"
        for kind in ("proxy", "emulator", "letta"):
            proc = self.procs.get(kind)
            if proc is not None:
                text += f"; {kind} {'up' if proc.state is State.READY else proc.state.value}"
        text += f"; {plural(sum(p.active_jobs for p in self.everything()), 'call')}"
        if self.stopping:
            text = f"stopping: {self.stop_progress(self.rt.clock()) or 'done'}; {text}"
        return text + (f"; alerts: {', '.join(alerts)}" if alerts else "")

    def stop_progress(self, now: float) -> str:
        """What a stop still waits for: ``waiting for worker-0 (1 call), proxy; 583 s left``."""
        waiting = sorted((p for p in self.everything() if p.running),
                         key=lambda p: (ORDER[p.spec.kind], p.name))
        if not waiting:
            return ""
        names = ", ".join(f"{p.name} ({plural(p.active_jobs, 'call')})"
                          if p.spec.kind == "worker" else p.name for p in waiting)
        left = self.drain_deadline_remaining(now)
        return f"waiting for {names}" + (f"; {left:.0f} s left" if left > 0 else "")

    def process_status(self) -> list[dict[str, Any]]:
        procs = sorted(self.everything(), key=lambda p: (ORDER[p.spec.kind], p.name))
        out = []
        for p in procs:
            item = p.status()
            if p in self.surges.values():
                item["role"] = "replacement"
            elif p in self.standbys.values():
                item["role"] = "standby"
            elif p in self.retiring:
                item["role"] = "retiring"
            out.append(item)
        return out

    def pool_status(self) -> dict[str, Any]:
        return {"desired": self.desired_workers, "ready": self.ready_workers(),
                "parked": self.parked_workers(), "unhealthy": self.unhealthy(),
                "min_ready": self.min_ready()}

