"""Serving the proxy: bind, report ``ready``, run until SIGTERM/SIGINT, then shut down
gracefully (stop accepting, let in-flight requests finish, close the clients)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from voiceops import events

from .app import create_app
from .context import CTX
from .fastlane import Lane
from .options import ProxyOptions, ProxySecrets

logger = logging.getLogger("voiceops.proxy")
# After an answer to an unread body (413, 408), how long the rest may still trickle in.
LINGER_S = 2.0
SHUTDOWN_TIMEOUT_S = 15.0  # longer than one dispatch can take (2 LiveKit calls x 5 s + retry)


class ListenError(OSError):
    """The listen address cannot be bound (in use, not local, no permission)."""


async def serve(options: ProxyOptions, secrets: ProxySecrets,
                stop: asyncio.Event | None = None) -> None:
    own_process = stop is None  # the proxy process itself (tests pass their own event)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # only enqueue; shutdown happens below
    app = create_app(options, secrets)
    # keepalive_timeout also runs from the connection's start: it bounds the wait for headers.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                           keepalive_timeout=options.header_timeout_s,
                           lingering_time=LINGER_S)
    await runner.setup()
    # The import-time heap (aiohttp, protobuf, letta-client/pydantic: ~90k objects, a ~50 ms
    # full collection here) never becomes garbage: kept out of the collector's scans, a full
    # collection in the middle of a dispatch costs what the requests' own objects cost.
    gc.collect()
    gc.freeze()
    server: asyncio.Server | None = None
    handler = runner.server
    assert handler is not None  # runner.setup() made it
    lane = Lane(app, handler)  # plain dispatches answered here, the rest by aiohttp
    try:
        server = await listen(lane, options.listen_host, options.listen_port)
        host, port = _bound(server)
        app[CTX].set_listen(host, port)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        events.emit(events.Ready(listen=address))
        logger.info("ready listen=%s livekit=%s agent_name=%s", address,
                    options.livekit_http_url, options.agent_name)
        await stop.wait()
        logger.info("stopping shutdown_timeout_s=%s", SHUTDOWN_TIMEOUT_S)
    finally:
        if server is not None:
            server.close()  # stop accepting; the lane's dispatches in flight still finish
        await lane.shutdown(SHUTDOWN_TIMEOUT_S)
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            if own_process:  # a repeated SIGTERM while exiting must not turn exit 0 into -15
                signal.signal(sig, signal.SIG_IGN)
    logger.info("stopped")


async def listen(lane: Lane, host: str, port: int) -> asyncio.Server:
    """The listening socket, its connections served by ``lane`` (and aiohttp behind it)."""
    try:
        # reuse_port: a replacement proxy (a reload) listens beside this one until it is ready.
        return await asyncio.get_running_loop().create_server(
            lane.protocol, host, port, reuse_port=True, backlog=128)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port} (proxy.listen): "
                          f"{exc.strerror or exc}") from None


def _bound(server: asyncio.Server) -> tuple[str, int]:
    address = server.sockets[0].getsockname()
    return str(address[0]), int(address[1])
