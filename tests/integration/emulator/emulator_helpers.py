"""Helpers for the emulator tests: a real worker subprocess, leak checks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web
from livekit import api

from voiceops.testing.procs import terminate
from voiceops.testing.waiting import wait_for_async

WORKER_APP = Path(__file__).with_name("worker_app.py")
Event = dict[str, Any]


class WorkerProc:
    """tests/integration/emulator/worker_app.py in its own process group."""

    def __init__(
        self,
        tmp_path: Path,
        server: Any,
        agent_name: str,
        *,
        connect: bool = False,
        load_file: Path | None = None,
        idle: int = 1,
        echo: bool = False,
    ) -> None:
        self.out = tmp_path / f"worker-{agent_name or 'unnamed'}-{time.monotonic_ns()}.jsonl"
        self.log = self.out.with_suffix(".log")
        args = [
            sys.executable,
            str(WORKER_APP),
            "--url",
            server.url,
            "--api-key",
            server.api_key,
            "--api-secret",
            server.api_secret,
            "--agent-name",
            agent_name,
            "--out",
            str(self.out),
        ]
        if connect:
            args.append("--connect")
        if load_file is not None:
            args += ["--load-file", str(load_file)]
        args += ["--idle", str(idle)]
        if echo:
            args.append("--echo")
        self._log_fh = open(self.log, "wb")  # noqa: SIM115 - the child writes it until close()
        self.proc = subprocess.Popen(
            args, stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    def events(self, name: str | None = None) -> list[Event]:
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        parsed = [json.loads(line) for line in lines if line.strip()]
        return [e for e in parsed if name is None or e["event"] == name]

    async def wait_event(
        self, name: str, timeout_s: float, where: Callable[[Event], bool] = lambda e: True
    ) -> Event:
        def find() -> Event | None:
            return next((e for e in self.events(name) if where(e)), None)

        return await wait_for_async(find, timeout_s, f"worker event {name!r}")

    async def registered(self, timeout_s: float = 30.0) -> str:
        return (await self.wait_event("registered", timeout_s))["worker_id"]

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (graceful aclose), then SIGKILL of the whole group past the deadline."""
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            tree = []
        terminate(self.proc, grace_s=timeout_s, kill_wait_s=10)
        psutil.wait_procs(tree, timeout=10)
        for p in tree:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                p.kill()
        self._log_fh.close()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def assert_no_children_left(*allowed_pids: int | None) -> None:
    """No child process of the test runner survives, except the listed ones (and their trees)."""
    allowed: set[int] = set()
    for pid in allowed_pids:
        if pid is None:
            continue
        try:
            root = psutil.Process(pid)
            allowed |= {root.pid, *(c.pid for c in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass
    me = psutil.Process()
    left = [p for p in me.children(recursive=True) if p.pid not in allowed]
    _, alive = psutil.wait_procs(left, timeout=5)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left behind: {alive}"


async def dispatch_jobs(lk: Any, room: str, agent_name: str) -> list[Any]:
    """Jobs of `agent_name`'s dispatches in `room` (empty while the room does not exist)."""
    try:
        dispatches = await lk.agent_dispatch.list_dispatch(room)
    except api.TwirpError:
        return []
    return [j for d in dispatches if d.agent_name == agent_name for j in d.state.jobs]


class WebhookSink:
    """A local aiohttp receiver that verifies every webhook with livekit's WebhookReceiver."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.receiver = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))
        self.events: list[Any] = []
        self.raw: list[tuple[str, str]] = []  # (content-type, authorization)
        self.rejected: list[str] = []
        self.changed = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        auth = request.headers.get("Authorization", "")
        self.raw.append((request.content_type, auth))
        try:
            self.events.append(self.receiver.receive(body, auth))
        except Exception as exc:  # record, answer 401 like a real receiver
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=401)
        return web.Response(text="ok")

    def names(self) -> list[str]:
        return [e.event for e in self.events]


async def participants_by_identity(server: Any, room: str) -> dict[str, Any]:
    """ListParticipants of `room` on `server`, keyed by identity."""
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return {p.identity: p for p in resp.participants}


async def until_participants(
    server: Any, room: str, predicate: Callable[[dict[str, Any]], Any], timeout_s: float
) -> dict[str, Any]:
    """Poll ListParticipants until `predicate(by_identity)` holds; fail at the deadline."""
    async def probe() -> dict[str, Any] | None:
        found = await participants_by_identity(server, room)
        return found if predicate(found) else None
    return await wait_for_async(probe, timeout_s, f"the participants {predicate}", 0.1,
                                done=lambda found: found is not None)


