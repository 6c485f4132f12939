"""``voiceops status``: every process, the pool and the alerts, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from voiceops.cli.client import call, error_message
from voiceops.cli.common import EX_OK, CliError, SubParsers, add_socket_options

# How a process beside another of the same name is shown (status JSON "role").
ROLE_LABELS: Final = {"replacement": "replacing", "retiring": "retiring"}


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
    code, data = call(args, "GET", "/status")
    if code != 200:
        raise CliError(f"voiceops: status failed: {error_message(code, data)}")
    print(json.dumps(data, indent=2) if args.json else format_status(data, time.time()))
    return EX_OK


def add_status(sub: SubParsers) -> None:
    """Register ``status``."""
    p = sub.add_parser("status", help="every process, the pool and the alerts")
    p.add_argument("--json", action="store_true", help="the status JSON as the API returns it")
    add_socket_options(p)
    p.set_defaults(handler=_status)
