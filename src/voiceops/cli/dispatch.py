"""``voiceops dispatch ROOM``: one dispatch through the proxy, then its timeline.

The proxy answers when LiveKit accepted the dispatch; the JobRequest and the join come from
the supervisor's monitor (``GET /dispatches/ID`` on the control socket), which saw the
worker's events. Each missing step is named, with what it usually means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from voiceops import config
from voiceops.cli.common import SubParsers, add_socket_options, load_config, socket_path
from voiceops.config import Config
from voiceops.supervisor import control

POLL_INTERVAL_S = 0.05
# After the JobRequest; ctx.connect() gives up after ~60 s, most joins take < 2 s.
JOIN_WAIT_S = 30.0

NO_JOB_REQUEST = (
    "no worker received a JobRequest within {deadline:.0f} s: LiveKit found no available worker "
    "registered as '{agent}' (a name mismatch, workers dead or full, or LiveKit dropped the job); "
    "see `voiceops status` for alerts and their diagnosis")
NO_JOIN = (
    "a worker accepted the job but the agent did not join within {wait:.0f} s: the media path "
    "(WebRTC/ICE between the worker and LiveKit) or the entrypoint failed; see the worker logs")


@dataclass(frozen=True)
class DispatchOptions:
    room: str
    agent_name: str
    agent_id: str = ""
    api_key: str = ""
    socket_path: Path | None = None
    deadline_s: float = 10.0
    join_wait_s: float = JOIN_WAIT_S


class DispatchFailed(Exception):
    """The step that did not happen, explained."""


async def post_dispatch(cfg: Config, opts: DispatchOptions) -> tuple[dict[str, Any], float]:
    """POST /api/dispatch-agent; returns (answer, seconds it took)."""
    host, port = config.parse_listen("proxy.listen", cfg.proxy.listen)
    url = f"http://{host}:{port}/api/dispatch-agent"
    body: dict[str, Any] = {"room": opts.room}
    if opts.agent_id:
        body["agent_id"] = opts.agent_id
    headers = {"Authorization": f"Bearer {opts.api_key}"} if opts.api_key else {}
    start = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.post(url, json=body, headers=headers) as resp,
        ):
            answer = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise DispatchFailed(f"the proxy at {url} did not answer ({type(exc).__name__}); "
                             "is `voiceops run` up?") from None
    elapsed = time.monotonic() - start
    if not isinstance(answer, dict) or not answer.get("success"):
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        raise DispatchFailed(f"dispatch refused (HTTP {resp.status}): "
                             f"{error.get('message', 'no message')}")
    return answer, elapsed


async def follow(opts: DispatchOptions, dispatch_id: str, emit: Callable[[str], None],
                 offset_s: float) -> None:
    """Poll the supervisor until the agent joined; raise DispatchFailed naming the missing step."""
    assert opts.socket_path is not None
    start = time.monotonic()
    seen_request = False
    while True:
        status, tl = await control.request(opts.socket_path, "GET", f"/dispatches/{dispatch_id}")
        if status == 200:
            if not seen_request and tl.get("job_request_after_s") is not None:
                seen_request = True
                emit(_line("JobRequest", offset_s + tl["job_request_after_s"]))
            if tl.get("joined_after_s") is not None:
                emit(_line("joined", offset_s + tl["joined_after_s"]))
                return
        waited = time.monotonic() - start
        if not seen_request and waited > opts.deadline_s + 2:
            raise DispatchFailed(NO_JOB_REQUEST.format(deadline=opts.deadline_s,
                                                       agent=opts.agent_name))
        if waited > opts.deadline_s + opts.join_wait_s:
            raise DispatchFailed(NO_JOIN.format(wait=opts.join_wait_s))
        await asyncio.sleep(POLL_INTERVAL_S)  # a poll interval against a deadline, not a wait


def _line(step: str, at_s: float) -> str:
    return f"  {step:<11} +{at_s * 1000:8.0f} ms"


async def run(cfg: Config, opts: DispatchOptions, emit: Callable[[str], None]) -> int:
    try:
        answer, latency_s = await post_dispatch(cfg, opts)
        emit(f"dispatch {answer['dispatch_id']} of '{answer.get('agent_name', cfg.agent.name)}' "
             f"to room '{answer['room']}'" + (" (reused an existing dispatch)"
                                              if answer.get("reused") else ""))
        emit(_line("dispatched", latency_s))
        if answer.get("reused"):
            emit("  the room already had this agent's dispatch; no new JobRequest follows")
            return 0
        if opts.socket_path is None:
            emit("  (supervisor not found: JobRequest and join not followed)")
            return 0
        await follow(opts, answer["dispatch_id"], emit, latency_s)
    except control.ControlClientError as exc:
        emit(f"  cannot follow the dispatch: {exc}")
        return 1
    except DispatchFailed as exc:
        emit(f"  {exc}")
        return 1
    return 0


def _api_key(cfg: config.Config) -> str:
    """The key for the proxy's /api/*: $VOICEOPS_API_KEY, else the first in proxy.api_keys_file."""
    if os.environ.get("VOICEOPS_API_KEY"):
        return os.environ["VOICEOPS_API_KEY"]
    keys = config.load_secrets(cfg, {}).proxy_api_keys if cfg.proxy.api_keys_file else frozenset()
    return min(keys) if keys else ""


def _dispatch(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, os.environ)
    sock: Path | None = socket_path(args)
    if sock is not None and not sock.exists():
        sock = None
    opts = DispatchOptions(
        room=args.room, agent_name=cfg.agent.name, agent_id=args.agent_id or "",
        api_key=_api_key(cfg), socket_path=sock,
        deadline_s=cfg.monitor.job_request_deadline_s)
    return asyncio.run(run(cfg, opts, print))


def add_dispatch(sub: SubParsers) -> None:
    """Register ``dispatch ROOM``."""
    p = sub.add_parser("dispatch", help="dispatch the agent to ROOM and print the timeline")
    p.add_argument("room", metavar="ROOM")
    p.add_argument("--agent-id", metavar="ID", help="the Letta agent for this call")
    add_socket_options(p)
    p.set_defaults(handler=_dispatch)
