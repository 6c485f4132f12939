"""``voiceops run``: the supervisor in the foreground (what the systemd unit starts)."""

from __future__ import annotations

import argparse

from voiceops import config
from voiceops.cli.common import SubParsers


def _run(args: argparse.Namespace) -> int:
    path = config.resolve_path(args.config)
    config.load(path)  # fail fast (exit 78) before importing the supervisor
    from voiceops.supervisor.main import run  # lazy: heavy imports, only for this command

    return run(str(path), sandbox=args.sandbox)


def add_run(sub: SubParsers) -> None:
    """Register ``run``."""
    p = sub.add_parser("run", help="run the supervisor in the foreground")
    p.add_argument("--config", metavar="PATH", help="config file (default: $VOICEOPS_CONFIG, "
                   "/etc/voiceops/voiceops.toml, config/voiceops.toml)")
    p.add_argument("--sandbox", action="store_true",
                   help="also start the bundled LiveKit emulator and point everything at it")
    p.set_defaults(handler=_run)
