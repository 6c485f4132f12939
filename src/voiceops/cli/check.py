"""``voiceops check``: is this deployment able to work at all?

Each check is one line of output, ``ok`` or ``FAIL`` with the reason and what to do.
The command exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from livekit import api

from voiceops import config
from voiceops.cli.client import status_or_none
from voiceops.cli.common import EX_FAILURE, EX_OK, SubParsers, add_socket_options, load_config
from voiceops.config import Config, ConfigError, Secrets
from voiceops.text import plural

CHECK_TIMEOUT_S = 5.0


def sandbox_running(status: dict[str, Any] | None) -> bool:
    """A running supervisor started with ``--sandbox`` (it runs the bundled emulator)."""
    return status is not None and any(p.get("kind") == "emulator"
                                      for p in status.get("processes", []))


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


async def check_livekit(cfg: Config, secrets: Secrets, *, sandbox: bool = False) -> CheckResult:
    """ListRooms with the configured key and secret: reachable, and the credentials accepted."""
    if not secrets.livekit_api_secret:
        return CheckResult("livekit", False, "no API secret: set LIVEKIT_API_SECRET or "
                                             "livekit.api_secret_file")
    timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
    try:
        async with api.LiveKitAPI(config.http_url(cfg.livekit.url), cfg.livekit.api_key,
                                  secrets.livekit_api_secret, timeout=timeout) as lk:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest())
    except api.TwirpError as exc:
        if exc.status in (401, 403):
            return CheckResult("livekit", False, f"{cfg.livekit.url} refused the credentials for "
                                                 f"key '{cfg.livekit.api_key}' (HTTP {exc.status})")
        return CheckResult("livekit", False, f"{cfg.livekit.url} answered HTTP {exc.status}: "
                                             f"{exc.message}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        hint = ("is `voiceops run --sandbox` running?" if sandbox
                else "is the server running?")
        return CheckResult("livekit", False, f"cannot reach {cfg.livekit.url}: "
                                             f"{type(exc).__name__}; {hint}")
    return CheckResult("livekit", True, f"{cfg.livekit.url} accepted key '{cfg.livekit.api_key}' "
                                        f"({plural(len(rooms.rooms), 'room')})")


async def check_letta(cfg: Config, secrets: Secrets, *, sandbox: bool = False) -> CheckResult:
    """GET /v1/health/ on the Letta server, then the default agent when one is configured."""
    base = cfg.letta.base_url.rstrip("/")
    url = base + "/v1/health/"
    headers = {"Authorization": f"Bearer {secrets.letta_api_key}"} if secrets.letta_api_key else {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S),
                                         headers=headers) as s:
            async with s.get(url) as resp:
                body: Any = await resp.json(content_type=None) if resp.status == 200 else None
                if resp.status != 200:
                    return CheckResult("letta", False, f"{url} answered HTTP {resp.status}")
            agent = await _default_agent(s, base, cfg.letta.default_agent_id)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        hint = ("`voiceops run --sandbox` serves its Letta stand-in there; skip this check with "
                "--no-letta" if sandbox else "is the Letta server running? (--no-letta skips this)")
        return CheckResult("letta", False, f"cannot reach {cfg.letta.base_url}: "
                                           f"{type(exc).__name__}; {hint}")
    if isinstance(agent, CheckResult):
        return agent
    version = body.get("version", "?") if isinstance(body, dict) else "?"
    return CheckResult("letta", True, f"{cfg.letta.base_url} is up (version {version}){agent}")


async def _default_agent(s: aiohttp.ClientSession, base: str, agent_id: str) -> str | CheckResult:
    """'' without a default agent; its name as a suffix; a FAIL when Letta does not know it."""
    if not agent_id:
        return ""
    async with s.get(f"{base}/v1/agents/{agent_id}") as resp:
        if resp.status in (404, 422):
            return CheckResult("letta", False, f"letta.default_agent_id: Letta at {base} has no "
                                               f"agent {agent_id!r} (HTTP {resp.status})")
        resp.raise_for_status()
        agent = await resp.json(content_type=None)
    name = agent.get("name", "?") if isinstance(agent, dict) else "?"
    return f"; default agent {name!r}"


def check_agent_names(cfg: Config, status: dict[str, Any] | None) -> CheckResult:
    """Workers of a running supervisor must be registered under the configured agent name."""
    if status is None:
        return CheckResult("agent name", True,
                           f"workers and dispatches use '{cfg.agent.name}' "
                           "(supervisor not running: registrations not checked)")
    names = {p.get("agent_name") for p in status.get("processes", [])
             if p.get("kind") == "worker" and p.get("agent_name")}
    wrong = sorted(n for n in names if n != cfg.agent.name)
    if wrong:
        return CheckResult("agent name", False,
                           f"workers registered as {', '.join(map(repr, wrong))} "
                           f"but dispatches ask for '{cfg.agent.name}'")
    if not names:
        return CheckResult("agent name", False, "no worker has registered with LiveKit yet; "
                                                "see `voiceops status` and the worker logs")
    return CheckResult("agent name", True, f"workers registered as '{cfg.agent.name}'")


def check_agent_setup(cfg: Config, env: Mapping[str, str] = os.environ) -> CheckResult:
    """The entrypoint resolves, and its own check (the voice providers' keys) passes."""
    from voiceops.worker.entry import module_hook, resolve

    try:
        resolve(cfg.workers.entrypoint)
        check = module_hook(cfg.workers.entrypoint, "check_config")
        if check is not None:
            check(cfg, env)
    except ConfigError as exc:
        return CheckResult("agent", False, str(exc))
    return CheckResult("agent", True, f"{cfg.workers.entrypoint} (voice: stt {cfg.voice.stt}, "
                                      f"tts {cfg.voice.tts})")


def check_load(cfg: Config) -> CheckResult:
    """How workers report load, against LiveKit's rule: no job at load >= 0.7."""
    from voiceops.worker.options import SERVER_TARGET_LOAD  # the worker's rule, one source

    threshold, max_jobs = cfg.workers.load_threshold, cfg.workers.max_jobs
    measure = (f"load counts jobs (0.7 at workers.max_jobs = {max_jobs})" if max_jobs
               else "load is the machine's CPU use (set workers.max_jobs on a shared machine)")
    if SERVER_TARGET_LOAD < threshold < 1.0:
        return CheckResult("load", True, f"workers.load_threshold {threshold} is above LiveKit's "
                                         f"target load {SERVER_TARGET_LOAD}, which offers no job "
                                         "at load >= 0.7 whatever a worker reports: workers use "
                                         f"{SERVER_TARGET_LOAD}; {measure}")
    return CheckResult("load", True, f"LiveKit offers no job to a worker at load >= "
                                     f"{SERVER_TARGET_LOAD}; {measure}")


def _sandbox_env() -> dict[str, str]:
    """The environment `voiceops run --sandbox` gives its children (offline voice, no keys)."""
    return {**os.environ, config.SANDBOX_ENV: "1"}


async def run_checks(cfg: Config, secrets: Secrets, status: dict[str, Any] | None,
                     *, letta: bool = True, sandbox: bool = False) -> list[CheckResult]:
    where = " (as `voiceops run --sandbox` uses it)" if sandbox else ""
    results = [CheckResult("config", True,
                           f"{cfg.source or 'built-in defaults'} is valid{where}"),
               check_load(cfg), check_agent_setup(cfg, _sandbox_env() if sandbox else os.environ)]
    results.append(await check_livekit(cfg, secrets, sandbox=sandbox))
    if letta:
        results.append(await check_letta(cfg, secrets, sandbox=sandbox))
    results.append(check_agent_names(cfg, status))
    return results


def _check(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, os.environ)
    status = status_or_none(args)
    # What `run --sandbox` would use: its dev secret unless one is configured.
    sandbox = args.sandbox or sandbox_running(status)
    if sandbox and not args.sandbox:
        print("note: the running supervisor is a sandbox; checking what it uses")
    secrets = config.load_secrets(cfg, sandbox=sandbox)
    results = asyncio.run(run_checks(cfg, secrets, status, letta=not args.no_letta,
                                     sandbox=sandbox))
    for result in results:
        print(result.line())
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"voiceops check: {plural(len(failed), 'problem')}: {', '.join(failed)}")
        return EX_FAILURE
    return EX_OK


def add_check(sub: SubParsers) -> None:
    """Register ``check``."""
    p = sub.add_parser("check",
                       help="validate config, reach LiveKit and Letta, compare agent names")
    p.add_argument("--sandbox", action="store_true",
                   help="check what `voiceops run --sandbox` uses (its dev secret, its emulator)")
    p.add_argument("--no-letta", action="store_true", help="skip the Letta check")
    add_socket_options(p)
    p.set_defaults(handler=_check)
