"""Everything a child would read, checked by the supervisor first: at start and before a reload.

A child that finds a bad secret file or a taken port exits 78 and is kept down; checking the
same things here turns that into a refused start (exit 78, key named) or a refused reload
(the running children keep serving), never a process taken down.
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from voiceops import config
from voiceops.config import Config, ConfigError, Secrets, parse_listen


def listen_addresses(cfg: Config, *, sandbox: bool) -> dict[str, tuple[str, int]]:
    """The addresses voiceops binds, by the key that sets each (port 0 binds anywhere: skipped)."""
    out: dict[str, tuple[str, int]] = {}
    if cfg.proxy.enabled:
        out["proxy.listen"] = parse_listen("proxy.listen", cfg.proxy.listen)
    out["metrics.listen"] = parse_listen("metrics.listen", cfg.metrics.listen)
    if sandbox:  # the bundled emulator and Letta stand-in listen where the config points
        for key, url in (("livekit.url", cfg.livekit.url), ("letta.base_url", cfg.letta.base_url)):
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
            out[key] = (parts.hostname or "127.0.0.1", port)
    return {key: addr for key, addr in out.items() if addr[1] != 0}


def check_port(key: str, host: str, port: int) -> None:
    """Bind and release ``host:port``; a :class:`ConfigError` naming ``key`` if that fails."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{key}: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # Like the servers themselves: a port in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            what = "is already in use" if exc.errno == errno.EADDRINUSE else \
                f"cannot be bound ({exc.strerror or exc})"
            raise ConfigError(f"{key}: {host}:{port} {what}") from None


def check_ports(cfg: Config, *, sandbox: bool, held: Config | None = None) -> None:
    """Every listen address is free, except those ``held`` (the running config) already binds."""
    ours = listen_addresses(held, sandbox=sandbox) if held is not None else {}
    for key, (host, port) in listen_addresses(cfg, sandbox=sandbox).items():
        if ours.get(key) == (host, port):
            continue  # our own child listens there now
        check_port(key, host, port)


def check_start(cfg: Config, *, sandbox: bool) -> Secrets:
    """What ``voiceops run`` verifies before spawning anything; the secrets on success."""
    secrets = config.load_secrets(cfg, sandbox=sandbox)
    config.require_livekit_secret(secrets)
    check_ports(cfg, sandbox=sandbox)
    return secrets


def check_reload(new: Config, running: Config, *, sandbox: bool) -> None:
    """What a reload must pass before it is applied: the children's secrets and new ports."""
    secrets = config.load_secrets(new, sandbox=sandbox)
    config.require_livekit_secret(secrets)
    check_ports(new, sandbox=sandbox, held=running)
