"""``voiceops scale|restart|drain``: change the pool through the supervisor's control socket."""

from __future__ import annotations

import argparse
import json
from typing import Any

from voiceops.cli.client import call, error_message
from voiceops.cli.common import EX_OK, CliError, SubParsers, add_socket_options


def _command(args: argparse.Namespace, path: str, body: dict[str, Any], what: str) -> int:
    code, data = call(args, "POST", path, body)
    if code != 200 or data.get("success") is not True:
        raise CliError(f"voiceops: {what} failed: {error_message(code, data)}")
    if args.json:
        print(json.dumps(data, indent=2))
        return EX_OK
    details = {k: v for k, v in data.items() if k != "success"}
    message = details.pop("message", None)
    print(f"{what}: {message or 'ok'}")
    for key, value in details.items():
        print(f"  {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return EX_OK


def add_scale(sub: SubParsers) -> None:
    """Register ``scale N``."""
    p = sub.add_parser("scale", help="set the number of workers (scale-down drains)")
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/scale", {"count": a.count}, f"scale {a.count}"))


def add_restart(sub: SubParsers) -> None:
    """Register ``restart NAME|all``."""
    p = sub.add_parser("restart", help="gracefully restart a process, or all (rolling)")
    p.add_argument("name", metavar="NAME|all")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/restart", {"name": a.name},
                                              f"restart {a.name}"))


def add_drain(sub: SubParsers) -> None:
    """Register ``drain NAME``."""
    p = sub.add_parser("drain", help="stop giving a worker new jobs and let its calls finish")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_socket_options(p)
    p.set_defaults(handler=lambda a: _command(a, "/drain", {"name": a.name}, f"drain {a.name}"))
