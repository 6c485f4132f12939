"""GET /api/agents: the Letta agents a browser may pick, listed server-side (the browser never
holds the Letta key), cached for a few seconds (``services.AgentsDirectory``)."""

from __future__ import annotations

from aiohttp import web

from .services import SERVICES


async def list_agents(request: web.Request) -> web.Response:
    agents = await request.app[SERVICES].agents.get()
    return web.json_response({"agents": agents})
