"""``voiceops run``: load the config, run the supervisor until it is stopped, return the exit code."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from voiceops import config
from voiceops.config import EX_CONFIG, ConfigError, parse_listen
from voiceops.supervisor.supervisor import Supervisor

EX_UNAVAILABLE = 69  # a socket we must serve on cannot be bound
log = logging.getLogger("voiceops.supervisor")


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")


async def start_servers(sup: Supervisor) -> list[Any]:
    """The control socket and the metrics HTTP server, when their modules are present."""
    started: list[Any] = []
    try:
        from voiceops.supervisor import control, http
    except ImportError as exc:  # pragma: no cover - only while the servers are being written
        log.warning("servers_unavailable error=%s", exc)
        return started
    try:
        path = control.default_socket_path(sup.cfg)
        started.append(await control.start_control_server(sup, str(path)))
        host, port = parse_listen("metrics.listen", sup.cfg.metrics.listen)
        started.append(await http.start_http_server(sup, sup.metrics.registry, host, port))
    except BaseException:
        for server in reversed(started):
            await server.aclose()
        raise
    return started


def run(config_path: str | None, *, sandbox: bool = False) -> int:
    """Run the supervisor in the foreground (blocking); returns the process exit code."""
    try:
        cfg = config.load(config.resolve_path(config_path))
    except ConfigError as exc:
        print(f"voiceops: {exc}", file=sys.stderr)
        return EX_CONFIG
    _setup_logging()
    sup = Supervisor(cfg, sandbox=sandbox)
    try:
        return asyncio.run(sup.run(servers=start_servers))
    except OSError as exc:
        print(f"voiceops: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except Exception as exc:  # control.ControlSocketError names its key; anything else is a bug
        log.debug("startup_failed", exc_info=True)
        print(f"voiceops: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
