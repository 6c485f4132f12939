"""Fixtures for the emulator tests (the livekit_server fixtures come from the voiceops plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from emulator_helpers import WebhookSink, WorkerProc
from livekit import api
from rtc_client import RtcClient


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    """Start real worker subprocesses with `workers(server, agent_name, connect=False, echo=False)`.

    Their JSON-lines reports and logs stay in the test's tmp_path for post-mortems."""
    started: list[WorkerProc] = []

    def start(
        server: Any,
        agent_name: str,
        *,
        connect: bool = False,
        load_file: Path | None = None,
        idle: int = 1,
        echo: bool = False,
    ) -> WorkerProc:
        proc = WorkerProc(
            tmp_path, server, agent_name, connect=connect or echo, load_file=load_file,
            idle=idle, echo=echo,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
async def lkapi(livekit_server: Any) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    ) as client:
        yield client


@pytest.fixture
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink("devkey", "secret")
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield sink
    await runner.cleanup()


class _RtcClients:
    """`await rtc_clients(n)`: n real rtc.Room clients in child processes, closed at the end."""

    def __init__(self) -> None:
        self.started: list[RtcClient] = []

    async def __call__(self, n: int) -> list[RtcClient]:
        new = [await RtcClient.start() for _ in range(n)]
        self.started += new
        return new

    def pids(self) -> list[int]:
        return [c.pid for c in self.started]


@pytest.fixture
async def rtc_clients() -> AsyncIterator[_RtcClients]:
    clients = _RtcClients()
    yield clients
    for client in clients.started:
        await client.close()
