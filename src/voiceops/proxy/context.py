"""What the routes share: static context set at construction (the services created inside the
loop are in ``services``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .options import ProxyOptions, ProxySecrets
from .ratelimit import RateLimiter
from .replay import ReplayGuard

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


CTX = web.AppKey("voiceops_proxy_ctx", ProxyContext)
