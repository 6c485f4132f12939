"""The operator's commands beside the control ones: ``check``, ``dispatch`` and ``emulator``.

Registered by :func:`voiceops.cli.build_parser`; same exit codes (0 ok, 1 failure, 78 config).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any, Final

from voiceops import checks, config, dispatch_cli
from voiceops.cli import EX_FAILURE, EX_OK, _add_socket_options, _load_config, socket_path
from voiceops.supervisor import control

_SubParsers = Any


def _status_or_none(args: argparse.Namespace) -> dict[str, Any] | None:
    try:
        code, data = asyncio.run(control.request(socket_path(args), "GET", "/status",
                                                 timeout_s=args.timeout))
    except control.ControlClientError:
        return None
    return data if code == 200 else None


def _check(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config, os.environ)
    status = _status_or_none(args)
    # What `run --sandbox` would use: its dev secret unless one is configured.
    sandbox = args.sandbox or checks.sandbox_running(status)
    if sandbox and not args.sandbox:
        print("note: the running supervisor is a sandbox; checking what it uses")
    secrets = config.load_secrets(cfg, sandbox=sandbox)
    results = asyncio.run(checks.run_checks(cfg, secrets, status, letta=not args.no_letta,
                                            sandbox=sandbox))
    for result in results:
        print(result.line())
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"voiceops check: {checks.plural(len(failed), 'problem')}: {', '.join(failed)}")
        return EX_FAILURE
    return EX_OK


def add_check(sub: _SubParsers) -> None:
    p = sub.add_parser("check", help="validate config, reach LiveKit and Letta, compare agent names")
    p.add_argument("--sandbox", action="store_true",
                   help="check what `voiceops run --sandbox` uses (its dev secret, its emulator)")
    p.add_argument("--no-letta", action="store_true", help="skip the Letta check")
    _add_socket_options(p)
    p.set_defaults(handler=_check)


def _api_key(cfg: config.Config) -> str:
    """The key for the proxy's /api/*: $VOICEOPS_API_KEY, else the first in proxy.api_keys_file."""
    if os.environ.get("VOICEOPS_API_KEY"):
        return os.environ["VOICEOPS_API_KEY"]
    keys = config.load_secrets(cfg, {}).proxy_api_keys if cfg.proxy.api_keys_file else frozenset()
    return min(keys) if keys else ""


def _dispatch(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config, os.environ)
    sock: Path | None = socket_path(args)
    if sock is not None and not sock.exists():
        sock = None
    opts = dispatch_cli.DispatchOptions(
        room=args.room, agent_name=cfg.agent.name, agent_id=args.agent_id or "",
        api_key=_api_key(cfg), socket_path=sock,
        deadline_s=cfg.monitor.job_request_deadline_s)
    return asyncio.run(dispatch_cli.run(cfg, opts, print))


def add_dispatch(sub: _SubParsers) -> None:
    p = sub.add_parser("dispatch", help="dispatch the agent to ROOM and print the timeline")
    p.add_argument("room", metavar="ROOM")
    p.add_argument("--agent-id", metavar="ID", help="the Letta agent for this call")
    _add_socket_options(p)
    p.set_defaults(handler=_dispatch)


def add_emulator(sub: _SubParsers) -> None:
    """Listed for help only: :func:`voiceops.cli.main` hands ``emulator ...`` to the emulator."""
    sub.add_parser("emulator", add_help=False,
                   help="the bundled LiveKit emulator alone (see `voiceops emulator --help`)")


SUBCOMMANDS: Final = (add_check, add_dispatch, add_emulator)
