"""The ``voiceops`` command (also ``python -m voiceops``).

Each subcommand is one ``add_<name>(subparsers)`` function that declares its arguments and
sets ``handler`` (``(args) -> exit code``); :data:`SUBCOMMANDS` lists them in help order.
Exit codes: 0 ok, 1 failure (the message on stderr), 2 usage, 78 config error (naming the key).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from voiceops import __version__, config
from voiceops.config import Config, ConfigError
from voiceops.supervisor import control

EX_OK: Final = 0
EX_FAILURE: Final = 1
# Where the systemd unit's RuntimeDirectory=voiceops puts the socket; an operator's shell
# has no $RUNTIME_DIRECTORY, so the client also looks here.
SYSTEMD_SOCKET: Final = Path("/run/voiceops") / control.SOCKET_NAME

_SubParsers = Any  # argparse's _SubParsersAction is private
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A failure to report on stderr (the message as is) with exit code 1."""


# --- shared helpers -----------------------------------------------------------------------

def _load_config(cli_path: str | None, env: Mapping[str, str]) -> Config:
    """``--config``, ``$VOICEOPS_CONFIG`` or a default file; built-in defaults if none exists."""
    path = config.resolve_path(cli_path, env)
    if cli_path or env.get("VOICEOPS_CONFIG") or path.exists():
        return config.load(path)
    return Config()


def socket_path(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Path:
    """``--socket``, else the supervisor's own rule, else the systemd runtime directory."""
    if args.socket:
        return Path(args.socket)
    path = control.default_socket_path(_load_config(args.config, env), env)
    if not path.exists() and SYSTEMD_SOCKET.exists():
        return SYSTEMD_SOCKET
    return path


def _add_socket_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="config file (to find the socket)")
    parser.add_argument("--socket", metavar="PATH", help="control socket (overrides the config)")
    parser.add_argument("--timeout", type=float, default=control.DEFAULT_TIMEOUT_S,
                        metavar="SECONDS", help="how long to wait for the supervisor")


def _call(args: argparse.Namespace, method: str, path: str,
          body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    where = socket_path(args)
    try:
        return asyncio.run(control.request(where, method, path, body, timeout_s=args.timeout))
    except control.NotRunning as exc:
        raise CliError(str(exc)) from None
    except control.ControlClientError as exc:
        raise CliError(f"voiceops: {exc}") from None


def _error_message(status: int, data: Mapping[str, Any]) -> str:
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return f"the supervisor answered HTTP {status}"


# --- run ----------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    path = config.resolve_path(args.config)
    config.load(path)  # fail fast (exit 78) before importing the supervisor
    from voiceops.supervisor.main import run  # lazy: heavy imports, only for this command

    return run(str(path), sandbox=args.sandbox)


def add_run(sub: _SubParsers) -> None:
    p = sub.add_parser("run", help="run the supervisor in the foreground")
    p.add_argument("--config", metavar="PATH", help="config file (default: $VOICEOPS_CONFIG, "
                   "/etc/voiceops/voiceops.toml, config/voiceops.toml)")
    p.add_argument("--sandbox", action="store_true",
                   help="also start the bundled LiveKit emulator and point everything at it")
    p.set_defaults(handler=_run)


# --- status -------------------------------------------------------------------------------

def format_duration(seconds: float | None) -> str:
    """``42s``, ``5m03s``, ``2h04m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


# How a process beside another of the same name is shown (status JSON "role").
ROLE_LABELS: Final = {"replacement": "replacing", "retiring": "retiring"}


def _process_name(p: Mapping[str, Any]) -> str:
    """``worker-0``, or ``worker-0 (replacing)`` / ``worker-0 (retiring)`` during a rollout."""
    role = ROLE_LABELS.get(str(p.get("role") or ""))
    return f"{_cell(p.get('name'))} ({role})" if role else _cell(p.get("name"))


def _process_row(p: Mapping[str, Any]) -> list[str]:
    rss = p.get("pss_bytes")
    return [_process_name(p), _cell(p.get("state")), _cell(p.get("pid")),
            format_duration(p.get("uptime_s")), _cell(p.get("restarts")),
            "-" if rss is None else f"{rss / 2**20:.1f}", _cell(p.get("active_jobs"))]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in (header, *rows)]


def format_status(status: Mapping[str, Any], now_s: float) -> str:
    """The human view of the status JSON: processes table, pool line, alerts."""
    header = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "PSS_MIB", "JOBS")
    lines = _table(header, [_process_row(p) for p in status.get("processes", [])])
    pool = status.get("pool", {})
    health = "UNHEALTHY" if pool.get("unhealthy") else "healthy"
    lines.append("")
    lines.append(f"pool: {pool.get('ready', 0)}/{pool.get('desired', 0)} workers ready, "
                 f"{pool.get('parked', 0)} parked, {health}; supervisor "
                 f"{status.get('state', '?')}, {'ready' if status.get('ready') else 'NOT ready'}")
    alerts = status.get("alerts", [])
    lines.append(f"alerts: {len(alerts) or 'none'}")
    for a in alerts:
        since = a.get("since")
        age = format_duration(now_s - since) if isinstance(since, (int, float)) else "-"
        lines.append(f"  {a.get('alert', '?')} (for {age}): {a.get('diagnosis', '')}")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    code, data = _call(args, "GET", "/status")
    if code != 200:
        raise CliError(f"voiceops: status failed: {_error_message(code, data)}")
    print(json.dumps(data, indent=2) if args.json else format_status(data, time.time()))
    return EX_OK


def add_status(sub: _SubParsers) -> None:
    p = sub.add_parser("status", help="every process, the pool and the alerts")
    p.add_argument("--json", action="store_true", help="the status JSON as the API returns it")
    _add_socket_options(p)
    p.set_defaults(handler=_status)


# --- scale / restart / drain --------------------------------------------------------------

def _command(args: argparse.Namespace, path: str, body: dict[str, Any], what: str) -> int:
    code, data = _call(args, "POST", path, body)
    if code != 200 or data.get("success") is not True:
        raise CliError(f"voiceops: {what} failed: {_error_message(code, data)}")
    if args.json:
        print(json.dumps(data, indent=2))
        return EX_OK
    details = {k: v for k, v in data.items() if k != "success"}
    message = details.pop("message", None)
    print(f"{what}: {message or 'ok'}")
    for key, value in details.items():
        print(f"  {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return EX_OK


def add_scale(sub: _SubParsers) -> None:
    p = sub.add_parser("scale", help="set the number of workers (scale-down drains)")
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/scale", {"count": a.count}, f"scale {a.count}"))


def add_restart(sub: _SubParsers) -> None:
    p = sub.add_parser("restart", help="gracefully restart a process, or all (rolling)")
    p.add_argument("name", metavar="NAME|all")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/restart", {"name": a.name},
                                              f"restart {a.name}"))


def add_drain(sub: _SubParsers) -> None:
    p = sub.add_parser("drain", help="stop giving a worker new jobs and let its calls finish")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/drain", {"name": a.name}, f"drain {a.name}"))


# --- entry point --------------------------------------------------------------------------

SUBCOMMANDS: Final[tuple[Callable[[_SubParsers], None], ...]] = (
    add_run, add_status, add_scale, add_restart, add_drain,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voiceops", description="Supervisor, dispatch proxy and monitor for LiveKit agents.")
    parser.add_argument("--version", action="version", version=f"voiceops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from voiceops import cli_ops  # check, dispatch, emulator: kept apart to keep this file small

    for add in (*SUBCOMMANDS, *cli_ops.SUBCOMMANDS):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # The emulator owns its flags (argparse's REMAINDER cannot pass `--help` through).
        from voiceops.emulator.cli import main as emulator_main

        return emulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    from voiceops.jwtkeys import silence_short_key_warning

    silence_short_key_warning()  # `voiceops run` says it once; `check` needs no per-token echo
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"voiceops: config error: {exc}", file=sys.stderr)
        return config.EX_CONFIG
    except CliError as exc:
        print(exc, file=sys.stderr)
        return EX_FAILURE
    except KeyboardInterrupt:
        return 130
