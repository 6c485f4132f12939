"""GET /healthz (the process answers), GET /readyz (LiveKit answers a cheap call:
``services.Readiness``)."""

from __future__ import annotations

from aiohttp import web

from .errors import error_response
from .services import SERVICES


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = await request.app[SERVICES].readiness.check()
    if not state.ready:
        return error_response(503, "not_ready", state.reason)
    return web.json_response({"status": "ready"})
