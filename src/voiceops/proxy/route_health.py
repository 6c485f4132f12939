"""GET /healthz (the process answers), GET /readyz (LiveKit answers a cheap call)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from .context import SERVICES
from .errors import ApiError, error_response
from .livekit_gateway import LiveKitGateway


@dataclass(frozen=True)
class ReadyState:
    ready: bool
    reason: str
    checked_s: float


class Readiness:
    """ListRooms with a short timeout, cached briefly so probes cannot load LiveKit."""

    def __init__(self, gateway: LiveKitGateway, *, timeout_s: float, cache_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._gw = gateway
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._clock = clock
        self._state: ReadyState | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> ReadyState:
        async with self._lock:
            now_s = self._clock()
            if self._state is None or now_s - self._state.checked_s >= self._cache_s:
                self._state = await self._probe(now_s)
            return self._state

    async def _probe(self, now_s: float) -> ReadyState:
        try:
            await self._gw.list_rooms([], timeout_s=self._timeout_s, retry=False)
        except ApiError as err:
            return ReadyState(False, err.message, now_s)
        return ReadyState(True, "", now_s)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = await request.app[SERVICES].readiness.check()
    if not state.ready:
        return error_response(503, "not_ready", state.reason)
    return web.json_response({"status": "ready"})
