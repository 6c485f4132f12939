"""What the routes share: static context set at construction, services created inside the loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from .options import ProxyOptions, ProxySecrets
from .ratelimit import RateLimiter
from .replay import ReplayGuard

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .livekit_gateway import LiveKitGateway
    from .route_agents import AgentsDirectory
    from .roomsync import RoomSync
    from .route_health import Readiness

API_PREFIX = "/api/"
DISPATCH_PATH = "/api/dispatch-agent"
TOKEN_PATH = "/api/token"


@dataclass
class ProxyContext:
    options: ProxyOptions
    secrets: ProxySecrets
    clock: Callable[[], float] = time.monotonic
    limiter: RateLimiter = field(init=False)
    replays: ReplayGuard = field(default_factory=ReplayGuard)
    # The proxy's own origin(s), known once bound (port 0): its debug page may call /api/*.
    self_origins: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.options.rate_limit_per_minute, clock=self.clock)

    def set_listen(self, host: str, port: int) -> None:
        hosts = {host}
        if host in ("127.0.0.1", "::1", "localhost"):
            hosts |= {"127.0.0.1", "localhost", "[::1]"}
        self.self_origins = {f"http://{h if ':' not in h or h.startswith('[') else f'[{h}]'}:{port}"
                             for h in hosts}

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/")
        return origin in self.options.allowed_origins or origin in self.self_origins


@dataclass(frozen=True)
class Services:
    """Created inside the running loop (cleanup_ctx) and closed with the app."""

    gateway: LiveKitGateway
    dispatcher: Dispatcher
    agents: AgentsDirectory
    readiness: Readiness
    room_sync: RoomSync


CTX = web.AppKey("voiceops_proxy_ctx", ProxyContext)
SERVICES = web.AppKey("voiceops_proxy_services", Services)
