"""Test-side handle on `rtc_client_script.py`: a real `rtc.Room` in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil

try:
    from .rtc_fakehub import mint_token
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_fakehub import mint_token

SCRIPT = Path(__file__).with_name("rtc_client_script.py")
CONNECT_DEADLINE_S = 30.0


class RtcClient:
    """Send commands to the child and wait for its JSON events, each wait bounded."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls) -> RtcClient:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"},
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def send(self, *words: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((" ".join(words) + "\n").encode())
        await self._proc.stdin.drain()

    async def expect(self, *names: str, timeout_s: float) -> dict[str, Any]:
        """The first event (already seen or new) whose name is in `names`; TimeoutError
        otherwise."""
        for event in self.events:
            if event["event"] in names:
                self.events.remove(event)
                return event
        assert self._proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise EOFError(f"client exited with {await self._proc.wait()}")
                event = json.loads(line)
                if event["event"] in names:
                    return event
                self.events.append(event)

    async def close(self) -> None:
        """EOF lets the child disconnect and exit; it is killed if it does not."""
        assert self._proc.stdin is not None
        if self._proc.returncode is None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await asyncio.wait_for(self._proc.wait(), 10)

    async def kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
        await asyncio.wait_for(self._proc.wait(), 10)


@contextlib.asynccontextmanager
async def rtc_clients(count: int, *servers: Any) -> AsyncIterator[list[RtcClient]]:
    """`count` client processes; afterwards no child but the servers' trees is left."""
    clients = [await RtcClient.start() for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()
        keep = {server.pid for server in servers if server.pid}
        left = [c for c in psutil.Process().children(recursive=True)
                if c.pid not in keep and not keep & {p.pid for p in c.parents()}]
        assert left == []


async def connect(client: RtcClient, server: Any, room: str, identity: str, *flags: str,
                  **grants: Any) -> dict[str, Any]:
    """Join `room` as `identity` (token grants `grants`); the `connected` event."""
    token = mint_token(room, identity, key=server.api_key, secret=server.api_secret, **grants)
    await client.send("connect", server.url, token, *flags)
    connected = await client.expect("connected", "failed", timeout_s=CONNECT_DEADLINE_S)
    assert connected["event"] == "connected", connected
    return connected
