"""The ``voiceops`` command (also ``python -m voiceops``): its parser and its entry point.

Each command group is one module with an ``add_<name>(subparsers)`` function that declares
its arguments and sets ``handler`` (``(args) -> exit code``); :data:`SUBCOMMANDS` lists them
in help order. Exit codes are in :mod:`voiceops.cli.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Final

from voiceops import __version__
from voiceops.cli import emulator
from voiceops.cli.check import add_check
from voiceops.cli.common import (
    EX_CONFIG,
    EX_FAILURE,
    EX_INTERRUPTED,
    CliError,
    Handler,
    SubParsers,
)
from voiceops.cli.dispatch import add_dispatch
from voiceops.cli.manage import add_drain, add_restart, add_scale
from voiceops.cli.run import add_run
from voiceops.cli.status import add_status
from voiceops.config import ConfigError

SUBCOMMANDS: Final[tuple[Callable[[SubParsers], None], ...]] = (
    add_run, add_status, add_scale, add_restart, add_drain,
    add_check, add_dispatch, emulator.add_emulator,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="voiceops", description="Supervisor, dispatch proxy and monitor for LiveKit agents.")
    parser.add_argument("--version", action="version", version=f"voiceops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (argparse exits 2 itself on a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        return emulator.run(argv[1:])
    args = build_parser().parse_args(argv)
    from voiceops.jwtkeys import silence_short_key_warning

    silence_short_key_warning()  # `voiceops run` says it once; `check` needs no per-token echo
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"voiceops: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except CliError as exc:
        print(exc, file=sys.stderr)
        return EX_FAILURE
    except KeyboardInterrupt:
        return EX_INTERRUPTED
