"""The supervisor's HTTP endpoints on ``metrics.listen`` (loopback by default).

``GET /metrics``  Prometheus exposition of the supervisor's one registry (collected on the loop:
                  it is an in-memory registry, a scrape is cheap).
``GET /healthz``  200 while the supervisor's loop runs (``view.is_alive()``), else 503.
``GET /readyz``   200 when the pool is ready (``view.is_ready()``), else 503 with the reason.
``GET /status``   the status JSON (see :mod:`voiceops.supervisor.api`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from voiceops.supervisor.api import SupervisorView

log = logging.getLogger(__name__)

_VIEW: Final = web.AppKey("view", SupervisorView)


def not_ready_reason(status: Mapping[str, Any]) -> str:
    """Why the pool is not ready, in words, from the status JSON."""
    pool = status.get("pool", {})
    if status.get("state") == "stopping":
        return "the supervisor is stopping"
    if pool.get("unhealthy"):
        return (f"pool unhealthy: {pool.get('parked', 0)} of {pool.get('desired', 0)} "
                "workers parked after crash loops")
    if pool.get("desired", 0) and not pool.get("ready", 0):
        return f"no ready workers (0/{pool.get('desired')})"
    return str(status.get("summary") or "not ready")


async def _healthz(request: web.Request) -> web.Response:
    alive = request.app[_VIEW].is_alive()
    return web.json_response({"alive": alive}, status=200 if alive else 503)


async def _readyz(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    if view.is_ready():
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": not_ready_reason(view.status())},
                             status=503)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[_VIEW].status())


def make_app(view: SupervisorView, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[_VIEW] = view
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/status", _status)
    return app


@dataclass
class HttpServer:
    """A running HTTP server; ``port`` is the bound port (useful with port 0)."""

    host: str
    port: int
    _runner: web.AppRunner

    async def aclose(self) -> None:
        await self._runner.cleanup()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def start_http_server(view: SupervisorView, registry: CollectorRegistry, host: str,
                            port: int) -> HttpServer:
    """Listen on ``host:port``; raises ``OSError`` when the address cannot be bound."""
    if not _is_loopback(host):
        # The status JSON names processes and agents: operators should mean it.
        log.warning("metrics_listen_not_loopback host=%s port=%d", host, port)
    runner = web.AppRunner(make_app(view, registry), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    log.info("http_listening host=%s port=%d", host, bound_port)
    return HttpServer(host, bound_port, runner)
