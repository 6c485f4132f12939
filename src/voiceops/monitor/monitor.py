"""The monitor: routes every child event to its owner and owns the background tasks.

``Monitor`` is the EventSink the supervisor feeds. It wires the parts and routes: proxy
dispatches and their jobs to :class:`~voiceops.monitor.dispatches.Dispatches` (the dispatch
path, its metrics and DispatchUnanswered), probes to the heartbeat and
:class:`~voiceops.monitor.probing.Probing` (HeartbeatFailed, LiveKitUnreachable), failed Letta
turns to :class:`~voiceops.monitor.lettahealth.LettaHealth`, the rest to the
:class:`~voiceops.monitor.recorder.Recorder`. Every alert edge passes through :meth:`fire` /
:meth:`resolve` to the alert book and its sinks. One TaskGroup (:meth:`start`, :meth:`aclose`)
runs the parts' loops, and one long-lived ``LiveKitAPI`` serves them all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from livekit import api

from voiceops.config import Config, Secrets, http_url
from voiceops.events import AgentJoined, Event, JobRequest, LettaError, Ready
from voiceops.metrics import Metrics
from voiceops.monitor import diagnose, lettacalls, poolcheck, reach
from voiceops.monitor.alerts import AlertBook, Change
from voiceops.monitor.correlate import CorrelateOptions
from voiceops.monitor.dispatches import Dispatches, DispatchOptions
from voiceops.monitor.heartbeat import Heartbeat, is_probe_room
from voiceops.monitor.lettahealth import LettaHealth
from voiceops.monitor.probing import Probing, ProbingOptions
from voiceops.monitor.recorder import Recorder
from voiceops.monitor.sinks import SinkOptions, WebhookSinks, log_change, metrics_change
from voiceops.monitor.workerinfo import fetch_all
from voiceops.signing import SignedTokens, install
from voiceops.supervisor.policy import ExitReason

logger = logging.getLogger("voiceops.monitor")
STATUS_REUSE_S = 0.5  # how long one status snapshot serves the diagnoses of a burst


@dataclass(frozen=True)
class MonitorOptions:
    """Knobs that are not user config (tests shorten them; the lead sets ``letta_enabled``)."""

    tick_s: float = 0.25
    livekit_check_interval_s: float = 10.0
    livekit_timeout_s: float = 5.0
    letta_enabled: bool = False  # only when the deployment uses Letta (off in the sandbox)
    letta_check_interval_s: float = 30.0
    letta_failure_window_s: float = lettacalls.WINDOW_S  # failed call turns counted this long
    pool_check_interval_s: float = 1.0
    no_ready_grace_s: float = 30.0
    join_timeout_s: float = 120.0
    max_tracked: int = 50_000
    confirm_concurrency: int = 32
    worker_info_timeout_s: float = 1.0
    host: str = ""  # "" → socket.gethostname()
    sinks: SinkOptions = field(default_factory=SinkOptions)


class Monitor:
    def __init__(self, cfg: Config, secrets: Secrets, metrics: Metrics, *,
                 status_provider: Callable[[], dict[str, Any]],
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 options: MonitorOptions | None = None) -> None:
        self.cfg = cfg
        self.opts = options or MonitorOptions()
        self._secrets = secrets
        self.metrics = metrics
        self._status = status_provider
        self._status_cache: tuple[float, dict[str, Any]] | None = None
        self._clock = clock
        self._wall = wall
        host = self.opts.host or socket.gethostname()
        self.recorder = Recorder(metrics)
        self.book = AlertBook(wall)
        self.heartbeat = Heartbeat(cfg.heartbeat, cfg.agent.name, self._api, clock=clock, host=host)
        self.webhooks = WebhookSinks(cfg.alerts.webhooks, cfg.alerts.alertmanager_url, host=host,
                                     wall=wall, firing=self.book.firing, opts=self.opts.sinks)
        self.dispatches = Dispatches(
            metrics, self._dispatch_options(), alerts=self,
            livekit=lambda: self._api().agent_dispatch, facts=self.facts,
            wait_pool_ready=self.wait_pool_ready, clock=clock)
        self.probing = self._probing()
        self.letta = LettaHealth(cfg.letta.base_url, secrets.letta_api_key,
                                 window_s=self.opts.letta_failure_window_s,
                                 timeout_s=self.opts.livekit_timeout_s, alerts=self,
                                 clock=clock)
        self.pool = poolcheck.PoolWatch(grace_s=self.opts.no_ready_grace_s, alerts=self,
                                        clock=clock)
        self.worker_ports: dict[str, int] = {}
        self._last_job_request: float | None = None
        self._lk: api.LiveKitAPI | None = None
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.tg: asyncio.TaskGroup | None = None

    def _probing(self) -> Probing:
        cfg = self.cfg
        options = ProbingOptions(cfg.heartbeat, cfg.livekit.url, cfg.workers.start_timeout_s,
                                 self.opts.livekit_timeout_s)
        return Probing(self.heartbeat, self.metrics, options, livekit=self._api,
                       status=self._safe_status, alerts=self, facts=self.facts,
                       probe_observed=self.dispatches.probe_observed,
                       wait_pool_ready=self.wait_pool_ready, clock=self._clock, wall=self._wall)

    def _dispatch_options(self) -> DispatchOptions:
        mon = self.cfg.monitor
        return DispatchOptions(
            CorrelateOptions(deadline_s=mon.job_request_deadline_s,
                             redispatch=mon.redispatch_unanswered,
                             join_timeout_s=self.opts.join_timeout_s,
                             max_entries=self.opts.max_tracked),
            confirm_concurrency=self.opts.confirm_concurrency,
            livekit_timeout_s=self.opts.livekit_timeout_s)

    # ---- EventSink -----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        self.recorder.on_event(event)
        if isinstance(event, JobRequest):
            self._last_job_request = self._clock()  # probe or not: LiveKit reaches our workers
        if isinstance(event, LettaError):
            self.letta.call_failed(event)
        elif isinstance(event, Ready):
            if event.http_port > 0 and event.process:
                self.worker_ports[event.process] = event.http_port
        elif not self._probe_event(event):
            self.dispatches.on_event(event)

    def _probe_event(self, ev: Event) -> bool:
        """Our heartbeat's probe (the heartbeat handles it), or another host's probe."""
        if isinstance(ev, JobRequest):
            return self.heartbeat.job_request_seen(ev.room, ev.dispatch_id) or \
                is_probe_room(ev.room)
        if isinstance(ev, AgentJoined):
            return self.heartbeat.agent_joined_seen(ev.room, ev.dispatch_id) or \
                is_probe_room(ev.room)
        return False

    def process_exited(self, name: str) -> None:
        """The supervisor saw ``name`` exit: forget its job count and health port."""
        self.recorder.process_exited(name)
        self.worker_ports.pop(name, None)

    def process_died(self, name: str, reason: ExitReason) -> None:
        """A process exited: the jobs it still held end now, with the cause."""
        held = self.dispatches.process_died(name, reason)
        if held is not None:
            self.recorder.jobs_cut(held, reason.kind)

    def alerts(self) -> list[dict[str, Any]]:
        return self.book.alerts()

    def dispatch_timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        return self.dispatches.timeline(dispatch_id)

    # ---- alert plumbing ------------------------------------------------------------------

    def _emit(self, change: Change | None) -> None:
        if change is None:
            return
        log_change(change)
        metrics_change(self.metrics, change)
        self.webhooks.on_change(change)

    def fire(self, name: str, diagnosis: str, labels: dict[str, str] | None = None) -> None:
        self._emit(self.book.fire(name, diagnosis, labels))

    def resolve(self, name: str) -> None:
        self._emit(self.book.resolve(name))

    def _safe_status(self) -> dict[str, Any]:
        try:
            return self._status()
        except Exception:  # the supervisor mid-shutdown must not take the monitor with it
            logger.exception("status_provider_failed")
            return {}

    def _facts_status(self) -> dict[str, Any]:
        """The status behind a diagnosis. A burst of unanswered dispatches asks once each: one
        snapshot per STATUS_REUSE_S serves them all (it was rebuilt thousands of times in one
        loop turn). Decisions (pool checks, a stop in progress) read it fresh."""
        now = self._clock()
        if self._status_cache is not None and 0 <= now - self._status_cache[0] < STATUS_REUSE_S:
            return self._status_cache[1]
        status = self._safe_status()
        self._status_cache = (now, status)
        return status

    async def facts(self, *, joins_missing: bool = False,
                    listing: diagnose.Listing | None = None) -> diagnose.Facts:
        status = self._facts_status()
        workers = []
        if self._http is not None and self.worker_ports:
            workers = await fetch_all(self._http, dict(self.worker_ports),
                                      self.opts.worker_info_timeout_s)
        recent_missing = self.dispatches.joins_missing_recently()
        return diagnose.Facts(
            agent_name=self.cfg.agent.name, livekit_url=self.cfg.livekit.url,
            livekit=self.probing.livekit, pool=status.get("pool", {}),
            processes=status.get("processes", []), workers=workers,
            load_threshold=self.cfg.workers.load_threshold,
            joins_missing=joins_missing or recent_missing, listing=listing,
            last_job_request_s=None if self._last_job_request is None
            else self._clock() - self._last_job_request)

    # ---- lifecycle -----------------------------------------------------------------------

    def _api(self) -> api.LiveKitAPI:
        if self._lk is None:
            raise RuntimeError("monitor not started")
        return self._lk

    async def start(self) -> None:
        """Open the LiveKit session and start the background tasks."""
        if self._task is not None:
            raise RuntimeError("monitor already started")
        self._lk = api.LiveKitAPI(
            http_url(self.cfg.livekit.url), self.cfg.livekit.api_key,
            self._secrets.livekit_api_secret,
            timeout=aiohttp.ClientTimeout(total=self.opts.livekit_timeout_s), failover=False)
        # A burst of unanswered dispatches is one ListDispatch each: no JWT minted per call.
        install(self._lk, SignedTokens(self.cfg.livekit.api_key,
                                       self._secrets.livekit_api_secret))
        self._http = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="voiceops monitor")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves: not ours to swallow
        lk, http, self._lk, self._http = self._lk, self._http, None, None
        if lk is not None:
            await lk.aclose()
        if http is not None:
            await http.close()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self.tg = tg
            tg.create_task(self.dispatches.run(self.opts.tick_s), name="dispatches")
            tg.create_task(self._every(self.opts.pool_check_interval_s, self._check_pool),
                           name="pool check")
            tg.create_task(self._every(reach.check_interval_s(
                self.cfg.heartbeat, self.opts.livekit_check_interval_s),
                self.probing.check_livekit), name="livekit check")
            if self.opts.letta_enabled:
                tg.create_task(self._every(self.opts.letta_check_interval_s, self._check_letta),
                               name="letta check")
            tg.create_task(self._every(self.opts.pool_check_interval_s, self.letta.tick),
                           name="letta calls")
            if self.cfg.heartbeat.enabled:
                tg.create_task(self.probing.run(), name="heartbeat")
            tg.create_task(self.webhooks.run(), name="webhooks")

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` every ``interval_s``, start to start (a slow step does not stretch the
        period); a failing step is logged, never fatal."""
        while True:
            started = self._clock()
            try:
                await step()
            except Exception:
                logger.exception("monitor_step_failed step=%s", getattr(step, "__name__", "?"))
            await asyncio.sleep(max(0.0, started + interval_s - self._clock()))

    # ---- checks --------------------------------------------------------------------------

    async def _check_letta(self) -> None:
        if self._http is None:
            raise RuntimeError("monitor not started")
        await self.letta.check(self._http)

    async def _check_pool(self) -> None:
        self.pool.check(self._safe_status())  # decisions read the status fresh

    async def wait_pool_ready(self, max_wait_s: float) -> None:
        """Soon after the pool is ready (at once when no local worker is wanted: workers
        elsewhere answer), or after ``max_wait_s`` anyway."""
        until = self._clock() + max_wait_s
        while self._clock() < until:
            pool = self._safe_status().get("pool", {})
            if int(pool.get("ready", 0)) > 0 or pool.get("desired") == 0:
                return
            await asyncio.sleep(self.opts.tick_s)
