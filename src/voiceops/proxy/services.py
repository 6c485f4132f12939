"""The proxy's services: the objects its routes use (the Letta agents directory, LiveKit
readiness, the dispatcher, the room sync), created inside the running loop and closed with the
app. Routes import this module and ``context``; neither imports a route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import letta_client
from aiohttp import web

from .dispatcher import Dispatcher
from .errors import ApiError
from .livekit_gateway import LiveKitGateway
from .roomsync import RoomSync

MAX_AGENTS = 500
Agent = dict[str, str]


class AgentsDirectory:
    def __init__(self, client: letta_client.AsyncLetta, base_url: str, *, cache_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._base_url = base_url
        self._cache_s = cache_s
        self._clock = clock
        self._cached: list[Agent] | None = None
        self._expires_s = 0.0
        self._lock = asyncio.Lock()  # concurrent misses share one upstream call

    async def get(self) -> list[Agent]:
        if self._fresh():
            assert self._cached is not None
            return self._cached
        async with self._lock:
            if not self._fresh():
                self._cached = await self._fetch()
                self._expires_s = self._clock() + self._cache_s
            assert self._cached is not None
            return self._cached

    def _fresh(self) -> bool:
        return self._cached is not None and self._clock() < self._expires_s

    async def _fetch(self) -> list[Agent]:
        agents: list[Agent] = []
        try:
            async for state in self._client.agents.list(limit=100):
                agents.append(_summary(state))
                if len(agents) >= MAX_AGENTS:
                    break
        except letta_client.APIError as exc:
            raise map_letta_error(exc, self._base_url) from None
        return agents


def _summary(state: Any) -> Agent:
    return {"id": str(getattr(state, "id", "") or ""),
            "name": str(getattr(state, "name", "") or ""),
            "description": str(getattr(state, "description", "") or "")}


def map_letta_error(exc: letta_client.APIError, base_url: str) -> ApiError:
    if isinstance(exc, letta_client.APITimeoutError):
        return ApiError(504, "letta_timeout", f"Letta at {base_url} did not answer in time")
    if isinstance(exc, letta_client.APIConnectionError):
        return ApiError(503, "letta_unreachable", f"Letta unreachable at {base_url}")
    if isinstance(exc, letta_client.APIStatusError):
        if exc.status_code in (401, 403):
            return ApiError(502, "letta_auth", f"Letta at {base_url} rejected the proxy's API key "
                            f"({exc.status_code}); check LETTA_API_KEY")
        status = 503 if exc.status_code == 503 else 502
        return ApiError(status, "letta_error",
                        f"Letta at {base_url} answered HTTP {exc.status_code}")
    return ApiError(502, "letta_error", f"Letta at {base_url} sent an answer the proxy cannot read")



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


@dataclass(frozen=True)
class Services:
    """Created inside the running loop (cleanup_ctx) and closed with the app."""

    gateway: LiveKitGateway
    dispatcher: Dispatcher
    agents: AgentsDirectory
    readiness: Readiness
    room_sync: RoomSync


SERVICES = web.AppKey("voiceops_proxy_services", Services)
