"""The control client as the commands use it: one request to the supervisor over its socket,
its failures turned into :class:`~voiceops.cli.common.CliError`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from typing import Any

from voiceops.cli.common import CliError, socket_path
from voiceops.supervisor import control


def call(args: argparse.Namespace, method: str, path: str,
         body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One request to the socket ``args`` name; (HTTP status, JSON answer)."""
    where = socket_path(args)
    try:
        return asyncio.run(control.request(where, method, path, body, timeout_s=args.timeout))
    except control.NotRunning as exc:
        raise CliError(str(exc)) from None
    except control.ControlClientError as exc:
        raise CliError(f"voiceops: {exc}") from None


def status_or_none(args: argparse.Namespace) -> dict[str, Any] | None:
    """The supervisor's status JSON, or None when it does not answer with one."""
    try:
        code, data = asyncio.run(control.request(socket_path(args), "GET", "/status",
                                                 timeout_s=args.timeout))
    except control.ControlClientError:
        return None
    return data if code == 200 else None


def error_message(status: int, data: Mapping[str, Any]) -> str:
    """The supervisor's own message for a failed request, else its HTTP status."""
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return f"the supervisor answered HTTP {status}"
