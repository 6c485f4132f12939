"""The proxy's aiohttp application: routes, middlewares, and the long-lived clients.

The single LiveKit client (:class:`.TwirpClient`, keep-alive connections) and the Letta
client are created inside the running loop by a cleanup context and closed with the app; no
request ever builds its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import letta_client
from aiohttp import web

from voiceops.signing import SignedTokens

from .context import CTX, ProxyContext
from .dispatcher import Dispatcher
from .livekit_gateway import LiveKitGateway
from .middleware import MIDDLEWARES
from .options import ProxyOptions, ProxySecrets
from .roombook import RoomBook
from .roomsync import RoomSync
from .route_agents import list_agents
from .route_debug import add_routes as add_debug_routes
from .route_dispatch import dispatch_agent
from .route_dispatches import dispatch_timeline
from .route_health import healthz, readyz
from .route_token import mint_token
from .route_webhook import livekit_webhook
from .services import SERVICES, AgentsDirectory, Readiness, Services
from .twirp import TwirpClient


def create_app(options: ProxyOptions, secrets: ProxySecrets, *,
               clock: Callable[[], float] = time.monotonic) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=options.max_body_bytes)
    app[CTX] = ProxyContext(options, secrets, clock)
    app.cleanup_ctx.append(_services)
    app.router.add_post("/api/dispatch-agent", dispatch_agent)
    app.router.add_post("/api/token", mint_token)
    app.router.add_get("/api/agents", list_agents, allow_head=False)
    app.router.add_get("/api/dispatches/{dispatch_id}", dispatch_timeline, allow_head=False)
    app.router.add_post("/livekit/webhook", livekit_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_debug_routes(app, options.livekit_url)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CTX]
    opts = ctx.options
    twirp = TwirpClient(opts.livekit_http_url)  # each call has its own asyncio timeout
    tokens = SignedTokens(opts.livekit_api_key, ctx.secrets.livekit_api_secret)
    letta = letta_client.AsyncLetta(base_url=opts.letta_base_url,
                                    api_key=ctx.secrets.letta_api_key or None,
                                    max_retries=0, timeout=opts.letta_timeout_s)
    gateway = LiveKitGateway(twirp, tokens, opts.livekit_http_url, opts.livekit_call_timeout_s)
    book = RoomBook(opts.agent_name, opts.dispatch_grace_s, clock=ctx.clock)
    sync = RoomSync(gateway, book, interval_s=opts.room_sync_interval_s, clock=ctx.clock)
    try:
        sync.start()
        app[SERVICES] = Services(
            gateway=gateway,
            dispatcher=Dispatcher(gateway, opts.agent_name, grace_s=opts.dispatch_grace_s,
                                  book=book),
            agents=AgentsDirectory(letta, opts.letta_base_url, cache_s=opts.agents_cache_s,
                                   clock=ctx.clock),
            readiness=Readiness(gateway, timeout_s=opts.ready_probe_timeout_s,
                                cache_s=opts.ready_cache_s, clock=ctx.clock),
            room_sync=sync,
        )
        yield
    finally:
        await sync.aclose()
        await twirp.aclose()
        await letta.close()
