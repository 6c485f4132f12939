"""GET /api/agents: the Letta agents a browser may pick, listed server-side (the browser never
holds the Letta key), cached for a few seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import letta_client
from aiohttp import web

from .context import SERVICES
from .errors import ApiError

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


async def list_agents(request: web.Request) -> web.Response:
    agents = await request.app[SERVICES].agents.get()
    return web.json_response({"agents": agents})
