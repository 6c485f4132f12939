"""What every ``voiceops`` command shares: exit codes, the error it reports, config loading,
and where the supervisor's control socket is.

Exit codes: 0 ok, 1 failure (the message on stderr), 2 usage (argparse's own), 78 config
error (naming the key), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from voiceops import config
from voiceops.config import Config
from voiceops.supervisor import control

EX_OK: Final = 0
EX_FAILURE: Final = 1
EX_USAGE: Final = 2
EX_CONFIG: Final = config.EX_CONFIG
EX_INTERRUPTED: Final = 130

# Where the systemd unit's RuntimeDirectory=voiceops puts the socket; an operator's shell
# has no $RUNTIME_DIRECTORY, so the client also looks here.
SYSTEMD_SOCKET: Final = Path("/run/voiceops") / control.SOCKET_NAME

SubParsers = Any  # argparse's _SubParsersAction is private
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A failure to report on stderr (the message as is) with exit code 1."""


def load_config(cli_path: str | None, env: Mapping[str, str]) -> Config:
    """``--config``, ``$VOICEOPS_CONFIG`` or a default file; built-in defaults if none exists."""
    path = config.resolve_path(cli_path, env)
    if cli_path or env.get("VOICEOPS_CONFIG") or path.exists():
        return config.load(path)
    return Config()


def socket_path(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Path:
    """``--socket``, else the supervisor's own rule, else the systemd runtime directory."""
    if args.socket:
        return Path(args.socket)
    path = control.default_socket_path(load_config(args.config, env), env)
    if not path.exists() and SYSTEMD_SOCKET.exists():
        return SYSTEMD_SOCKET
    return path


def add_socket_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--socket`` and ``--timeout``: how a command finds the supervisor."""
    parser.add_argument("--config", metavar="PATH", help="config file (to find the socket)")
    parser.add_argument("--socket", metavar="PATH", help="control socket (overrides the config)")
    parser.add_argument("--timeout", type=float, default=control.DEFAULT_TIMEOUT_S,
                        metavar="SECONDS", help="how long to wait for the supervisor")
