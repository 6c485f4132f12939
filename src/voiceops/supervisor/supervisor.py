"""The supervisor process: wires the pool to signals, the event socket, systemd and servers.

Signal handlers only enqueue; :meth:`Supervisor._signal_loop` acts on them inside the loop.
SIGTERM/SIGINT: STOPPING=1, the proxy first, then one SIGTERM per worker and the drain
budget (EXTEND_TIMEOUT_USEC while it runs). A second one shortens the budget and is never
forwarded. SIGHUP: re-read the config; refuse it if invalid; apply the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import random
import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry

from voiceops import __version__, config, events
from voiceops.config import Config, ConfigError
from voiceops.metrics import Metrics
from voiceops.supervisor import preflight, reaper
from voiceops.supervisor.api import ControlError, EventSink
from voiceops.supervisor.child import ChildRegistry
from voiceops.supervisor.eventsock import EventSocket, runtime_dir
from voiceops.supervisor.logs import Forwarder
from voiceops.supervisor.policy import ExitReason
from voiceops.supervisor.pool import Pool
from voiceops.supervisor.process import ManagedProcess, Runtime
from voiceops.supervisor.resources import memory_figure, sample_tree
from voiceops.supervisor.senders import owner_name
from voiceops.supervisor.spec import Tuning
from voiceops.supervisor.systemd import Notifier, loop_healthy

EX_SOFTWARE: Final = 70
KILL_GRACE_S: Final = 30.0  # what systemd should allow beyond our drain budget
EXTEND_EVERY_S: Final = 5.0
SAY_EVERY_S: Final = 30.0  # how often a long stop repeats what it waits for
PSS_EVERY: Final = 5  # resource rounds between PSS readings when no limit is near
HANDLED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD,
                          signal.SIGUSR2)
AlertsProvider = Callable[[], list[dict[str, Any]]]
TimelineProvider = Callable[[str], dict[str, Any] | None]
log = logging.getLogger("voiceops.supervisor")


class Supervisor:
    """The pool's owner and the :class:`~voiceops.supervisor.api.SupervisorView` servers see."""

    def __init__(self, cfg: Config, *, sandbox: bool = False, tuning: Tuning | None = None,
                 registry: CollectorRegistry | None = None, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 child_env: Mapping[str, str] | None = None) -> None:
        self.cfg, self.sandbox, self.clock = cfg, sandbox, clock
        self.tuning = tuning or Tuning.from_env()
        self.metrics = Metrics(cfg.agent.name, registry)
        self.notifier = notifier or Notifier()
        self.pool: Pool | None = None
        self.stopping = False
        self.exit_code = 0
        self._sinks: list[EventSink] = []
        self._alerts: AlertsProvider | None = None
        self._timelines: TimelineProvider | None = None
        self._exit_listeners: list[Callable[[str], None]] = []
        self._exit_reason_listeners: list[Callable[[str, ExitReason], None]] = []
        self._child_env = child_env
        self._tasks: set[asyncio.Task[None]] = set()
        self._signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._last_tick_done: float | None = None
        self._ready_sent = False
        self._stall_next_tick = False
        self._budget_cap: float | None = None  # set by a second stop signal
        self._last_refusal_log = float("-inf")

    # --- extension points --------------------------------------------------------------
    def add_event_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def set_alerts_provider(self, provider: AlertsProvider) -> None:
        self._alerts = provider

    def set_timeline_provider(self, provider: TimelineProvider) -> None:
        self._timelines = provider

    def add_exit_listener(self, listener: Callable[[str], None]) -> None:
        """Called with a process's name each time it exits."""
        self._exit_listeners.append(listener)

    def add_exit_reason_listener(self, listener: Callable[[str, ExitReason], None]) -> None:
        """Called with a process's name and why it exited, each time it exits."""
        self._exit_reason_listeners.append(listener)

    def _process_exited(self, name: str, reason: ExitReason) -> None:
        calls: list[Callable[[], None]] = [functools.partial(f, name) for f in self._exit_listeners]
        calls += [functools.partial(f, name, reason) for f in self._exit_reason_listeners]
        for call in calls:
            try:
                call()
            except Exception:
                log.exception("exit_listener_failed process=%s", name)

    def dispatch_timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        return None if self._timelines is None else self._timelines(dispatch_id)

    def _active_alerts(self) -> list[dict[str, Any]]:
        if self._alerts is None:
            return []
        try:
            return list(self._alerts())
        except Exception:  # a broken monitor must not take the supervisor down
            log.exception("alerts_provider_failed")
            return []

    # --- SupervisorView ----------------------------------------------------------------
    def _pool(self) -> Pool:
        if self.pool is None:
            raise ControlError(503, "the supervisor is starting")
        return self.pool

    def status(self) -> dict[str, Any]:
        pool = self._pool()
        alerts = self._active_alerts()
        return {"version": __version__, "state": "stopping" if self.stopping else "running",
                "ready": self.is_ready(), "summary": pool.summary([a["alert"] for a in alerts]),
                "pool": pool.pool_status(), "processes": pool.process_status(),
                "alerts": alerts}

    def is_ready(self) -> bool:
        return self.pool is not None and not self.stopping and self.pool.is_ready()

    def is_alive(self) -> bool:
        max_age = 3 * self.tuning.tick_interval_s + 2.0
        return loop_healthy(self.clock(), self._last_tick_done, max_age)

    def _check_running(self) -> Pool:
        if self.stopping:
            raise ControlError(409, "the supervisor is stopping")
        return self._pool()

    async def scale(self, count: int) -> dict[str, Any]:
        pool = self._check_running()
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ControlError(400, "count: must be an integer >= 0")
        previous = pool.desired_workers
        pool.scale(count)
        log.info("scale_requested previous=%d count=%d", previous, count)
        return {"previous": previous, "desired": count}

    def _known(self, pool: Pool, name: str, *, allow_all: bool) -> None:
        if not (name in pool.procs or (allow_all and name == "all")):
            raise ControlError(404, f"no process named {name!r}")

    async def restart(self, name: str) -> dict[str, Any]:
        pool = self._check_running()
        self._known(pool, name, allow_all=True)
        return {"restarting": pool.restart(name)}

    async def drain(self, name: str) -> dict[str, Any]:
        pool = self._check_running()
        self._known(pool, name, allow_all=False)
        pool.drain(name)
        return {"draining": name}

    # --- tasks -------------------------------------------------------------------------
    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        # A supervisor bug: say so loudly and stop cleanly rather than run half-blind.
        log.error("supervisor_task_failed", exc_info=task.exception())
        self.exit_code = EX_SOFTWARE
        self._signals.put_nowait(signal.SIGTERM)

    # --- run ---------------------------------------------------------------------------
    async def run(self, *, servers: Callable[[Supervisor], Coroutine[Any, Any, list[Any]]]
                  | None = None) -> int:
        loop = asyncio.get_running_loop()
        reaper.become_subreaper()
        forwarder = Forwarder()
        sock = await EventSocket.open(runtime_dir() / "events.sock", self._on_datagram)
        rt = Runtime(self.metrics, forwarder, ChildRegistry(), str(sock.path.resolve()),
                     self.create_task, self._wake.set, self.clock, random.Random(),
                     base_env=self._child_env, on_exit=self._process_exited)
        self.pool = Pool(self.cfg, rt, sandbox=self.sandbox, tuning=self.tuning)
        self._sinks.insert(0, self.pool)
        started: list[Any] = []
        try:
            started = await servers(self) if servers is not None else []
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self._signals.put_nowait, sig)
            self.pool.start()
            # Everything imported and built so far lives as long as we do: keep it out of the
            # collector's full passes, which otherwise stall the loop (a slow status answer).
            gc.freeze()
            self._wake.set()  # the first tick (it spawns the workers) runs now, not a tick later
            loops = [self.create_task(c) for c in (self._reconcile_loop(), self._signal_loop(),
                                                   self._resource_loop(), self._watchdog_loop())]
            await self._done.wait()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)
            for server in reversed(started):
                await server.aclose()
            await sock.aclose()
            await self._cancel_leftovers()
            forwarder.close()
            self.notifier.close()
        return self.exit_code

    async def _cancel_leftovers(self) -> None:
        leftovers = list(self._tasks)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def _on_datagram(self, data: bytes, sender: int = 0) -> None:
        try:
            event = events.decode(data)
        except events.EventError as exc:
            self.metrics.events_dropped.inc()
            log.debug("event_dropped error=%s", exc)
            return
        verified = self._from_claimed_child(event, sender)
        if verified is None:
            return
        event = verified
        for sink in self._sinks:
            try:
                sink.on_event(event)
            except Exception:
                self.metrics.events_dropped.inc()
                log.exception("event_sink_failed type=%s", event.TYPE)

    def _from_claimed_child(self, event: events.Event, sender: int) -> events.Event | None:
        """Only the claimed child's own process tree may speak for it (forged events lie to
        metrics and alerts): the event under the child's current name (a standby that took a
        worker's slot still says its spawn name), or None, counted and logged at most once a
        minute."""
        procs = self.pool.everything() if self.pool is not None else ()
        # A child's names: its slot now, and the one it was spawned (and reports) under.
        roots = {p.child.pid: (p.name, p.child.output.name) for p in procs if p.child is not None}
        names = owner_name(sender, roots)
        if names is not None and event.process in names:
            return event if event.process == names[0] else \
                dataclasses.replace(event, process=names[0])
        owner = names[0] if names is not None else None
        self.metrics.events_refused.inc()
        now = self.clock()
        if now - self._last_refusal_log >= 60.0:
            self._last_refusal_log = now
            # Events are taken only from the claimed child's process tree.
            log.warning("event_refused type=%s claimed=%s sender_pid=%d sender_owner=%s",
                        event.TYPE, event.process or "-", sender, owner or "none")
        return None

    # --- loops -------------------------------------------------------------------------
    async def _reconcile_loop(self) -> None:
        pool = self._pool()
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that races with the event being set, and the loop would never stop.
            # Wake at the next deadline (a sub-second backoff ending), at the latest after a tick.
            wait_s = self.tuning.tick_interval_s
            deadline = pool.next_deadline()
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._stall_next_tick:  # test hook (VOICEOPS_DEBUG_STALL_TICK_S): a wedged tick
                self._stall_next_tick = False
                log.warning("debug_tick_stall seconds=%.1f", self.tuning.debug_stall_tick_s)
                await asyncio.sleep(self.tuning.debug_stall_tick_s)
            await pool.tick(self.clock())
            self._after_tick(pool)
            self._last_tick_done = self.clock()

    def _after_tick(self, pool: Pool) -> None:
        summary = pool.summary([a["alert"] for a in self._active_alerts()])
        if not self._ready_sent and not self.stopping and pool.is_ready():
            self._ready_sent = True
            log.info("pool_ready summary=%r", summary)
            self.notifier.ready(summary)
        else:
            self.notifier.status(summary)

    async def _resource_loop(self) -> None:
        pool = self._pool()
        rounds = 0
        while True:
            await asyncio.sleep(self.tuning.resource_interval_s)
            rounds += 1
            for proc in list(pool.everything()):
                if proc.child is not None and proc.running:
                    self._sample(proc, pss_due=rounds % PSS_EVERY == 1)

    def _sample(self, proc: ManagedProcess, *, pss_due: bool) -> None:
        """PSS every PSS_EVERY rounds, at a first sample, and whenever the cheap summed RSS
        says a limit may be crossed; CPU every round."""
        procs = proc.child.live_processes() if proc.child is not None else []
        limits = [mb for mb in (proc.options.rss_soft_limit_mb, proc.options.rss_hard_limit_mb)
                  if mb]
        sample = sample_tree(procs, pss=pss_due or not proc.pss_bytes)
        if sample.pss_bytes is None and limits and sample.rss_bytes > min(limits) * 2**20:
            sample = sample_tree(procs, pss=True)
        proc.apply_sample(memory_figure(sample, proc.pss_bytes), sample.cpu_s,
                          self.tuning.rss_samples)

    async def _watchdog_loop(self) -> None:
        period = self.notifier.watchdog_period_s
        if period is None:
            return
        max_age = 3 * self.tuning.tick_interval_s + period
        withheld = False
        while True:
            healthy = loop_healthy(self.clock(), self._last_tick_done, max_age)
            if healthy:
                self.notifier.watchdog()
            elif not withheld:
                log.error("watchdog_withheld reason=reconcile_loop_stalled")
            withheld = not healthy
            await asyncio.sleep(period)

    async def _signal_loop(self) -> None:
        while True:
            sig = await self._signals.get()
            if sig in (signal.SIGTERM, signal.SIGINT):
                self._on_stop_signal(sig)
            elif sig == signal.SIGHUP:
                self._reload()
            elif sig == signal.SIGCHLD:
                self._wake.set()  # an adopted orphan may need reaping
            elif sig == signal.SIGUSR2 and self.tuning.debug_stall_tick_s > 0:
                self._stall_next_tick = True
                self._wake.set()

    # --- stop and reload ---------------------------------------------------------------
    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if not self.stopping:
            log.info("shutdown_requested signal=%s", sig.name)
            self.stopping = True
            self.create_task(self._shutdown())
            return
        # Never forwarded: a second SIGTERM would make livekit-agents drop every call.
        cap = self.tuning.second_signal_budget_s
        log.warning("shutdown_hurried signal=%s budget_cap_s=%.1f", sig.name, cap)
        self._pool().shorten(cap)
        self._budget_cap = cap

    async def _shutdown(self) -> None:
        pool = self._pool()
        self.notifier.stopping()
        pool.begin_shutdown()
        self._wake.set()
        for kind in ("proxy", "worker", "emulator", "letta"):
            procs = pool.stop_kind(kind, self._budget_cap)
            await self._wait_exited(pool, procs)
        log.info("shutdown_complete")
        self._done.set()

    async def _wait_exited(self, pool: Pool, procs: Iterable[ManagedProcess]) -> None:
        procs = list(procs)
        said, said_at = "", float("-inf")
        while any(p.running for p in procs):
            now = self.clock()
            remaining = pool.drain_deadline_remaining(now)
            if remaining > 0:
                self.notifier.extend_timeout(remaining + KILL_GRACE_S)
            progress = pool.stop_progress(now)
            # On the terminal when what we wait for changes, and every 30 s of a long drain.
            if progress.partition(";")[0] != said.partition(";")[0] or now - said_at >= SAY_EVERY_S:
                log.info("shutdown_waiting progress=%r", progress)
                said, said_at = progress, now
            self.notifier.status(pool.summary())
            waiters = [asyncio.ensure_future(p.exited.wait()) for p in procs if p.running]
            try:
                await asyncio.wait(waiters, timeout=EXTEND_EVERY_S,
                                   return_when=asyncio.ALL_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    def _reload(self) -> None:
        if self.stopping:
            return
        self.notifier.reloading()
        path = self.cfg.source
        try:
            cfg = config.load(path, sandbox=self.sandbox)
            # What the children will read (secret and key files, credentials, new ports):
            # a reload they cannot live with is refused here, never applied.
            preflight.check_reload(cfg, self.cfg, sandbox=self.sandbox)
        except ConfigError as exc:
            log.error("reload_refused path=%s error=%s", path, exc)
            self.notifier.ready(f"reload refused ({exc}); {self._pool().summary()}")
            return
        changed = self._pool().apply_config(cfg)
        self.cfg = cfg
        log.info("reload_applied path=%s rolling=%s workers=%d", path, ",".join(changed) or "-",
                 cfg.workers.count)
        self.notifier.ready(self._pool().summary())
