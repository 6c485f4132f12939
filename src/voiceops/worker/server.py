"""One AgentServer in this process: build it, run it, drain it on a signal, report events.

Lifecycle (exit codes for the supervisor):

- ``run()`` registers with LiveKit; the ``ready`` event follows LiveKit's confirmation.
- First SIGTERM/SIGINT: drain (stop taking jobs, let running ones finish, at most
  ``drain_timeout_s``), then close; exit 0.
- Second SIGTERM/SIGINT: kill the job processes and exit 1 at once.
- LiveKit unreachable after livekit-agents' retries: exit 1 (the supervisor restarts us).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import psutil
from livekit.agents import AgentServer
from livekit.agents.worker import _DefaultLoadCalc
from livekit.protocol import models

from voiceops import events
from voiceops.worker import demand, drainflag, fleet
from voiceops.worker.entry import wrap, wrap_setup
from voiceops.worker.handler import RequestHandler
from voiceops.worker.observed import ObservedAgentServer
from voiceops.worker.options import WorkerOptions, jobs_load

logger = logging.getLogger("voiceops.worker")

EX_OK: Final = 0
EX_FAILED: Final = 1
ACTIVATE_SIGNAL: Final = signal.SIGUSR2  # the supervisor's "standby, take over now"
# Env vars that would silently override agent.name inside livekit-agents.
_NAME_OVERRIDES: Final = ("LIVEKIT_AGENT_NAME_OVERRIDE", "LIVEKIT_AGENT_NAME")
# livekit-agents' forkserver loads livekit's local inference models (a VAD and 244 MB of
# end-of-turn weights) unless this says "0". voiceops' pipeline uses silero's own VAD and no
# turn detector; the weights grew the forkserver from 145 MB to 390 MB, and every job process
# is a fork of it. An entrypoint that uses livekit's turn detector sets it to 1.
PRELOAD_LOCAL_INFERENCE_ENV: Final = "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"


class Phase(StrEnum):
    RUNNING = "running"
    DRAINING = "draining"
    KILLING = "killing"


_ON_SIGNAL: Final = {Phase.RUNNING: Phase.DRAINING, Phase.DRAINING: Phase.KILLING,
                     Phase.KILLING: Phase.KILLING}


class WorkerRuntime:
    """Owns the AgentServer and every task around it."""

    def __init__(self, opts: WorkerOptions,
                 emit: Callable[[events.Event], bool] = events.emit) -> None:
        self._opts = opts
        self._emit = emit
        self._phase = Phase.RUNNING
        self._load = 0.0
        self._started = asyncio.Event()
        self._demand_pool: demand.DemandPool | None = None  # the pool, once _started is set
        self._registered = False
        self._fleet = fleet.FleetBoard(Path(opts.fleet_dir)) if opts.fleet_dir else None
        # Before the job processes exist, so they inherit where the flag is.
        self._drain_flag = drainflag.install()
        os.environ.setdefault(PRELOAD_LOCAL_INFERENCE_ENV, "0")  # before the forkserver starts
        self._server = self._build()

    @property
    def server(self) -> AgentServer:
        return self._server

    def _build(self) -> ObservedAgentServer:
        o = self._opts
        for name in _NAME_OVERRIDES:
            if os.environ.pop(name, None) is not None:
                logger.warning("agent_name_override_ignored env=%s agent_name=%s", name,
                               o.agent_name)
        handler: RequestHandler
        server = ObservedAgentServer(
            on_declined=lambda job: handler.declined(job),  # noqa: PLW0108 - handler is bound below
            ws_url=o.ws_url, api_key=o.api_key, api_secret=o.api_secret,
            host=o.health_host, port=o.health_port,
            num_idle_processes=o.num_idle_processes, load_threshold=o.load_threshold,
            drain_timeout=math.ceil(o.drain_timeout_s), load_fnc=self._measure_load,
            preload_modules=[o.entrypoint.partition(":")[0]], standby=o.standby,
            setup_fnc=wrap_setup(o.entrypoint),
            initialize_process_timeout=o.initialize_process_timeout_s,
            reported_load=self._reported_load if o.max_jobs else None,
        )
        handler = RequestHandler(agent_name=o.agent_name, worker_id=lambda: server.id,
                                 draining=lambda: server.draining,
                                 on_decided=self._decided, emit=self._emit,
                                 passes=self._passes)
        self._handler = handler
        server.rtc_session(wrap(o.entrypoint), agent_name=o.agent_name, on_request=handler)
        server.on("worker_started", self._on_started)
        server.on("worker_registered", self._on_registered)
        return server

    def _on_started(self) -> None:
        # The pool exists once run() has started it: size its warm processes to demand, the
        # accepted offers (livekit's reserved slots also count probes and offers passed on:
        # each started a job process, only to close it again).
        self._demand_pool = demand.install(self._server._proc_pool, lambda: self._handler.launching)
        self._started.set()

    def _measure_load(self, server: AgentServer) -> float:
        # The server offers no job at load >= 0.7. livekit-agents' own measure is the machine's
        # CPU (2.5 s average); with workers.max_jobs the load counts this worker's jobs instead.
        if self._opts.max_jobs:
            self._load = jobs_load(len(server.active_jobs), self._opts.max_jobs)
        else:
            self._load = _DefaultLoadCalc.get_load(server)
        return self._load

    def _reported_load(self) -> float:
        # What LiveKit sees: jobs being launched count too, so it spreads a burst before they
        # show as active (livekit-agents' own threshold keeps its measure, active jobs only).
        server = self._server
        return jobs_load(len(server.active_jobs) + max(0, server._reserved_slots),
                         self._opts.max_jobs)

    def _held_jobs(self) -> int:
        """Active jobs, plus offers being decided or accepted and not yet launched."""
        return len(self._server.active_jobs) + self._handler.offers_held

    def _decided(self, job_id: str) -> None:
        self._server.note_decided(job_id)
        if self._demand_pool is not None:
            # An accepted offer's process starts now, during the answer/assignment round trip,
            # not on the pool's next look (0.1 s); any other answer wants none.
            self._demand_pool.top_up()
        self._publish()  # peers see this worker's jobs before the assignment round trip

    async def _passes(self, job_id: str) -> bool:
        fleet_board = self._fleet
        if fleet_board is None or not fleet_board.would_pass(job_id, self._held_jobs() - 1):
            return False
        # A burst's offers reach every worker at once, and a peer's record shows only those it
        # has read: wait for it to catch up, then decide on what it says then.
        await asyncio.sleep(fleet.SETTLE_S)
        if not fleet_board.passes(job_id, self._held_jobs() - 1):
            return False
        # The pass must be on record before LiveKit offers the job to a peer, or the peer
        # could pass it too: without the record, the job is taken here.
        return self._publish()

    def _ready(self) -> bool:
        """Whether LiveKit may hand this worker a job a peer passed on (see .fleet)."""
        s = self._server
        if (self._phase is not Phase.RUNNING or not self._registered or s._connecting
                or s.draining or s.standby):
            return False
        if self._opts.max_jobs:
            return self._held_jobs() < self._opts.max_jobs
        return self._load < self._opts.load_threshold

    def _publish(self) -> bool:
        if self._fleet is None:
            return False
        try:
            self._fleet.publish(self._held_jobs(), self._ready())
        except OSError as exc:  # peers then see a stale record: no pass toward us
            logger.warning("fleet_publish_failed error=%s", type(exc).__name__)
            return False
        return True

    def _on_registered(self, worker_id: str, server_info: models.ServerInfo) -> None:
        self._registered = True
        self._publish()
        port = self._server.worker_info.http_port
        standby = self._server.standby
        self._emit(events.Ready(worker_id=worker_id, agent_name=self._opts.agent_name,
                                http_port=port, standby=standby))
        logger.info("worker_registered worker_id=%s http_port=%s agent_name=%s standby=%s",
                    worker_id, port, self._opts.agent_name, standby)

    def _activate(self) -> None:
        """SIGUSR2 from the supervisor: this standby takes over a dead worker's slot."""
        if self._phase is Phase.RUNNING and self._server.activate():
            self._emit(events.Ready(worker_id=self._server.id, agent_name=self._opts.agent_name,
                                    http_port=self._server.worker_info.http_port))
            logger.info("standby_activated worker_id=%s", self._server.id)
            self._publish()

    async def run(self) -> int:
        """Run until stopped; return the process exit code."""
        loop = asyncio.get_running_loop()
        signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, signals.put_nowait, sig)  # handlers only enqueue
        loop.add_signal_handler(ACTIVATE_SIGNAL, self._activate)
        helpers = [asyncio.create_task(self._on_signals(signals), name="signals"),
                   asyncio.create_task(self._watch_jobs(), name="jobs")]
        if self._fleet is not None:
            helpers.append(asyncio.create_task(self._fleet_heartbeat(), name="fleet"))
        try:
            await self._server.run(devmode=False)
        except Exception as exc:  # livekit-agents gives up after its retries, or bad options
            logger.error("worker_stopped error_type=%s error=%r", type(exc).__name__, str(exc))
            return EX_FAILED
        finally:
            await _cancel(*helpers)
            await self._server.aclose()
            drainflag.clear(self._drain_flag)
            if self._fleet is not None:
                self._fleet.close()
            for sig in (signal.SIGTERM, signal.SIGINT, ACTIVATE_SIGNAL):
                loop.remove_signal_handler(sig)
        return EX_OK

    async def _on_signals(self, signals: asyncio.Queue[signal.Signals]) -> None:
        stopping: asyncio.Task[None] | None = None
        try:
            while True:
                sig = await signals.get()
                self._phase = _ON_SIGNAL[self._phase]
                logger.info("signal_received signal=%s phase=%s", sig.name, self._phase.value)
                if self._phase is Phase.DRAINING:
                    drainflag.mark(self._drain_flag)  # agents nobody called leave now
                    self._publish()  # peers stop passing offers to us at once
                    stopping = asyncio.create_task(self._drain_and_close(), name="drain")
                elif self._phase is Phase.KILLING:
                    _kill_descendants_and_exit()
        finally:
            if stopping is not None:
                await _cancel(stopping)

    async def _drain_and_close(self) -> None:
        await self._started.wait()
        timeout_s = self._opts.drain_timeout_s
        logger.info("worker_draining timeout_s=%s active_jobs=%d", timeout_s,
                    len(self._server.active_jobs))
        try:
            await self._server.drain(timeout=math.ceil(timeout_s))
        except TimeoutError:
            logger.warning("drain_timed_out active_jobs=%d action=close_jobs",
                           len(self._server.active_jobs))
        await self._server.aclose()  # run() returns once this completes

    async def _fleet_heartbeat(self) -> None:
        """Keep this worker's record fresh for its peers (see .fleet)."""
        while True:
            self._publish()
            await asyncio.sleep(fleet.HEARTBEAT_S)

    async def _watch_jobs(self) -> None:
        """Emit ``jobs`` whenever the active job count changes (including the first reading)."""
        await self._started.wait()
        pool = self._demand_pool
        assert pool is not None  # installed before _started is set
        last = -1
        while True:
            count = len(self._server.active_jobs)
            if count != last:
                last = count
                self._emit(events.Jobs(active_jobs=count, load=round(self._load, 3)))
            closed = demand.trim(pool)
            if closed:
                logger.info("job_processes_trimmed closed=%d idle_target=%d", closed,
                            self._opts.num_idle_processes)
            await asyncio.sleep(self._opts.jobs_poll_interval_s)


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel our own tasks and wait; a cancellation of the caller still propagates."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            logger.exception("background_task_failed task=%s", task.get_name())


def _kill_descendants_and_exit() -> None:
    """The fast path of a second signal: no job process may outlive this worker."""
    logger.warning("second_signal action=kill_job_processes_and_exit")
    me = psutil.Process()
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    os._exit(EX_FAILED)


async def _main(opts: WorkerOptions) -> int:
    return await WorkerRuntime(opts).run()


def run(opts: WorkerOptions) -> int:
    """Run one worker in a fresh event loop; return the exit code."""
    return asyncio.run(_main(opts))
