"""One aiohttp app on one port (/agent, /rtc, /twirp, /emulator), plus Emulator and serve()."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from livekit import api

from voiceops import events

from .admin import Admin
from .agent_socket import AgentSocket
from .cors import setup_cors
from .dispatcher import Dispatcher
from .faults import FaultController
from .hub import Hub
from .options import EmulatorOptions
from .rooms import RoomManager
from .twirp import TwirpServer
from .webhooks import WebhookNotifier
from .workers import WorkerRegistry

logger = logging.getLogger("voiceops.emulator")
READY_PREFIX = "voiceops emulator listening on "


@dataclass
class EmulatorCore:
    options: EmulatorOptions
    faults: FaultController
    workers: WorkerRegistry
    dispatcher: Dispatcher
    rooms: RoomManager
    webhooks: WebhookNotifier
    hub: Hub
    admin: Admin
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def drop_workers(self) -> None:
        """The drop_workers fault: close every /agent socket once (workers reconnect, new ids)."""
        task = asyncio.get_running_loop().create_task(
            self.workers.close_all(aiohttp.WSCloseCode.GOING_AWAY, b"fault: drop_workers")
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


CORE_KEY: web.AppKey[EmulatorCore] = web.AppKey("voiceops_emulator_core", EmulatorCore)


def build_core(
    options: EmulatorOptions,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> EmulatorCore:
    faults = FaultController()
    workers = WorkerRegistry()
    verifier = api.TokenVerifier(options.api_key, options.api_secret)
    dispatcher = Dispatcher(options, workers, faults, rng or random.Random(), clock)
    webhooks = WebhookNotifier(
        options.webhook_urls,
        options.api_key,
        options.api_secret,
        attempts=options.webhook_attempts,
        timeout_s=options.webhook_timeout_s,
        backoff_s=options.webhook_backoff_s,
        queue_size=options.webhook_queue_size,
        clock=clock,
    )
    rooms = RoomManager(options, dispatcher, webhooks, clock, workers)
    hub = Hub(rooms, verifier, faults, clock)
    core = EmulatorCore(
        options, faults, workers, dispatcher, rooms, webhooks, hub, Admin(faults, rooms, workers)
    )
    faults.bind_drop_workers(core.drop_workers)
    return core


def _setup_rtc(app: web.Application, hub: Hub) -> None:
    """Wire /rtc when the signalling module is present; a broken module fails loudly."""
    if importlib.util.find_spec(f"{__package__}.rtc") is None:
        # ctx.connect() will fail without it
        logger.warning("rtc_unavailable route=/rtc")
        return
    from . import rtc

    rtc.setup_rtc_routes(app, hub)


async def _root(request: web.Request) -> web.Response:
    return web.Response(text="OK")  # livekit-server answers its health check the same way


def build_app(
    options: EmulatorOptions,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    core = build_core(options, rng, clock)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    setup_cors(app)  # before any route: the Go server allows CORS on all of them
    app[CORE_KEY] = core
    sockets = AgentSocket(
        options, api.TokenVerifier(options.api_key, options.api_secret), core.workers
    )
    app.router.add_get("/agent", sockets.handle)
    twirp = TwirpServer(
        core.rooms, api.TokenVerifier(options.api_key, options.api_secret), core.faults
    )
    twirp.add_routes(app)
    core.admin.twirp_calls = twirp.calls
    core.admin.add_routes(app)
    app.router.add_get("/", _root)
    _setup_rtc(app, core.hub)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    core = app[CORE_KEY]
    await core.webhooks.start()
    await core.rooms.start()


async def _on_shutdown(app: web.Application) -> None:
    await app[CORE_KEY].workers.close_all(aiohttp.WSCloseCode.GOING_AWAY, b"server shutting down")


async def _on_cleanup(app: web.Application) -> None:
    core = app[CORE_KEY]
    await core.rooms.close()
    await core.dispatcher.close()
    await core.hub.media.close()
    for task in list(core.tasks):
        task.cancel()
    await asyncio.gather(*core.tasks, return_exceptions=True)
    await core.webhooks.close()


class Emulator:
    """The emulator in the current event loop: `async with Emulator() as emu: emu.url …`."""

    def __init__(
        self,
        options: EmulatorOptions | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or EmulatorOptions(port=0)
        self.app = build_app(self.options, rng=rng, clock=clock)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def core(self) -> EmulatorCore:
        return self.app[CORE_KEY]

    @property
    def faults(self) -> FaultController:
        return self.core.faults

    @property
    def url(self) -> str:
        return f"ws://{self.options.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.options.host}:{self.port}"

    def state(self) -> dict[str, Any]:
        return self.core.admin.snapshot()

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        logger.info("emulator_listening url=%s", self.http_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(
    host: str = "127.0.0.1",
    port: int = 7880,
    api_key: str = "devkey",
    api_secret: str = "secret",
    webhook_urls: tuple[str, ...] | list[str] = (),
    *,
    stop: asyncio.Event | None = None,
    **option_overrides: Any,
) -> None:
    """Run until `stop` is set (or the task is cancelled); prints one ready line on stdout."""
    options = EmulatorOptions(
        host=host,
        port=port,
        api_key=api_key,
        api_secret=api_secret,
        webhook_urls=tuple(webhook_urls),
        **option_overrides,
    )
    emulator = Emulator(options)
    await emulator.start()
    # A server process from here on: what start-up built (modules, aiortc, the app) lives as
    # long as it does, so take it out of the collector's reach. Otherwise each full collection
    # walked ~120k objects, a 120-130 ms stall of the one event loop in the middle of a burst.
    gc.collect()
    gc.freeze()
    try:
        print(f"{READY_PREFIX}{emulator.http_url}", flush=True, file=sys.stdout)
        # Under `voiceops run --sandbox` the supervisor waits for this (a no-op elsewhere).
        events.emit(events.Ready(listen=emulator.http_url))
        await (stop or asyncio.Event()).wait()
    finally:
        await emulator.stop()
