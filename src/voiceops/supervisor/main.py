"""``voiceops run``: load the config, run the supervisor until it is stopped, return the exit
code."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from voiceops import config, jwtkeys
from voiceops import sandbox as sandbox_profile
from voiceops.config import EX_CONFIG, ConfigError, parse_listen
from voiceops.monitor.monitor import Monitor, MonitorOptions
from voiceops.supervisor import control, http, preflight
from voiceops.supervisor.eventsock import runtime_dir
from voiceops.supervisor.supervisor import Supervisor
from voiceops.worker.fleet import ENV as FLEET_ENV

EX_UNAVAILABLE = 69  # a socket we must serve on cannot be bound
log = logging.getLogger("voiceops.supervisor")


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")


def child_env(cfg: config.Config, secrets: config.Secrets, *, sandbox: bool) -> dict[str, str]:
    """The children's environment: ours. Children resolve secrets by the same rules (env,
    *_file keys, $CREDENTIALS_DIRECTORY), so a credential never lands in an environment block;
    only the sandbox's built-in dev secret is handed down explicitly."""
    env = dict(os.environ)
    # Workers spread jobs among themselves through records here (voiceops.worker.fleet).
    env[FLEET_ENV] = str((runtime_dir() / "fleet").resolve())
    if sandbox and not config.load_secrets(cfg).livekit_api_secret:
        env["LIVEKIT_API_SECRET"] = secrets.livekit_api_secret
    return env


def build_monitor(sup: Supervisor, secrets: config.Secrets) -> Monitor:
    """The monitor, fed every child event and contributing alerts to status and STATUS=."""
    cfg = sup.cfg
    if sup.sandbox:
        cfg = sandbox_profile.monitor_config(cfg)
        # LiveKit is local: a fault shows in `voiceops status` within fault_visible_within_s.
        log.info("sandbox_heartbeat interval_s=%g timeout_s=%g fault_visible_within_s=%g",
                 cfg.heartbeat.interval_s, cfg.heartbeat.timeout_s,
                 sandbox_profile.FAULT_VISIBLE_WITHIN_S)
    # Letta is checked when it is configured, and in the sandbox (its stand-in is a child).
    letta = sup.sandbox or bool(cfg.letta.default_agent_id or secrets.letta_api_key)
    monitor = Monitor(cfg, secrets, sup.metrics, status_provider=sup.status,
                      options=MonitorOptions(letta_enabled=letta))
    sup.add_event_sink(monitor)
    sup.set_alerts_provider(monitor.alerts)
    sup.set_timeline_provider(monitor.dispatch_timeline)
    sup.add_exit_listener(monitor.process_exited)
    sup.add_exit_reason_listener(monitor.process_died)
    return monitor


def servers_with(monitor: Monitor) -> Callable[[Supervisor], Coroutine[Any, Any, list[Any]]]:
    async def start_servers(sup: Supervisor) -> list[Any]:
        """The control socket, the metrics HTTP server and the monitor; closed in reverse."""
        started: list[Any] = []
        try:
            path = control.default_socket_path(sup.cfg)
            started.append(await control.start_control_server(sup, str(path)))
            host, port = parse_listen("metrics.listen", sup.cfg.metrics.listen)
            started.append(await http.start_http_server(sup, sup.metrics.registry, host, port))
            await monitor.start()
            started.append(monitor)
        except BaseException:
            for server in reversed(started):
                await server.aclose()
            raise
        return started
    return start_servers


def run(config_path: str | None, *, sandbox: bool = False) -> int:
    """Run the supervisor in the foreground (blocking); returns the process exit code."""
    try:
        cfg = config.load(config.resolve_path(config_path), sandbox=sandbox)
        secrets = preflight.check_start(cfg, sandbox=sandbox)
    except ConfigError as exc:
        print(f"voiceops: {exc}", file=sys.stderr)
        return EX_CONFIG
    _setup_logging()
    jwtkeys.silence_short_key_warning()
    note = jwtkeys.secret_note(secrets.livekit_api_secret, sandbox=sandbox)
    if note is not None:
        log.log(*note)
    sup = Supervisor(cfg, sandbox=sandbox, child_env=child_env(cfg, secrets, sandbox=sandbox))
    monitor = build_monitor(sup, secrets)
    try:
        return asyncio.run(sup.run(servers=servers_with(monitor)))
    except OSError as exc:
        print(f"voiceops: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except Exception as exc:  # control.ControlSocketError and friends name their key
        print(f"voiceops: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
