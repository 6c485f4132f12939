"""Monitor parts that need no LiveKit: pool alerts, Letta reachability, webhook retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from monitor_helpers import FakePool, make_monitor

from voiceops import config
from voiceops.monitor import alerts as A
from voiceops.monitor.alerts import AlertBook
from voiceops.monitor.monitor import MonitorOptions
from voiceops.monitor.sinks import SinkOptions, WebhookSinks
from voiceops.testing.waiting import wait_for_async


class Upstream:
    """A loopback HTTP server whose answer status a test can change; records JSON bodies."""

    def __init__(self) -> None:
        self.status = 200
        self.fail_next = 0
        self.requests = 0
        self.bodies: list[Any] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.method == "POST":
            self.bodies.append(await request.json())
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503)
        return web.Response(status=self.status, text="{}")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    runner = web.AppRunner(up.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    up.url = f"http://127.0.0.1:{port}"
    yield up
    await runner.cleanup()


OPTS = MonitorOptions(tick_s=0.05, pool_check_interval_s=0.05, no_ready_grace_s=0.3,
                      letta_enabled=True, letta_check_interval_s=0.1, livekit_timeout_s=1.0,
                      livekit_check_interval_s=60.0, host="test")


def cfg(letta_url: str = "http://127.0.0.1:9") -> config.Config:
    return config.from_dict({"heartbeat": {"enabled": False}, "letta": {"base_url": letta_url}})


async def test_no_ready_workers_and_crash_loop_fire_and_resolve() -> None:
    """NoReadyWorkers fires after its grace and WorkerCrashLoop while a worker is parked; both
    resolve when the pool recovers."""
    pool = FakePool(desired=2)
    pool.processes["worker-1"] = {"name": "worker-1", "kind": "worker", "state": "parked",
                                  "last_exit": "crash(1)"}
    mon = make_monitor(cfg(), "s", pool, OPTS)
    await mon.start()
    try:
        await wait_for_async(lambda: mon.book.is_firing(A.NO_READY_WORKERS), 5, "NoReadyWorkers")
        await wait_for_async(lambda: mon.book.is_firing(A.WORKER_CRASH_LOOP), 5, "WorkerCrashLoop")
        alerts = {a["alert"]: a for a in mon.alerts()}
        assert "0 of 2 workers ready" in alerts[A.NO_READY_WORKERS]["diagnosis"]
        assert alerts[A.WORKER_CRASH_LOOP]["labels"] == {"process": "worker-1"}
        pool.processes["worker-1"]["state"] = "ready"
        await wait_for_async(lambda: not mon.book.is_firing(A.NO_READY_WORKERS), 5, "resolved")
        await wait_for_async(lambda: not mon.book.is_firing(A.WORKER_CRASH_LOOP), 5, "resolved")
    finally:
        await mon.aclose()


async def test_letta_unreachable_fires_and_resolves(upstream: Upstream) -> None:
    """GET /v1/health/ failing twice fires LettaUnreachable; a 200 resolves it."""
    mon = make_monitor(cfg(upstream.url), "s", FakePool(0), OPTS)
    upstream.status = 500
    await mon.start()
    try:
        await wait_for_async(lambda: mon.book.is_firing(A.LETTA_UNREACHABLE), 5, "LettaUnreachable")
        assert any("Letta" in a["diagnosis"] and "HTTP 500" in a["diagnosis"]
                   for a in mon.alerts())
        upstream.status = 200
        await wait_for_async(lambda: not mon.book.is_firing(A.LETTA_UNREACHABLE), 5, "resolved")
    finally:
        await mon.aclose()


async def test_letta_check_is_off_by_default(upstream: Upstream) -> None:
    """Without letta_enabled nothing calls Letta (the sandbox has none)."""
    opts = MonitorOptions(tick_s=0.05, livekit_check_interval_s=0.05, livekit_timeout_s=0.5,
                          letta_check_interval_s=0.05, host="test")
    cfg_ = config.from_dict({"heartbeat": {"enabled": False}, "letta": {"base_url": upstream.url},
                             "livekit": {"url": "ws://127.0.0.1:9"}})
    mon = make_monitor(cfg_, "s", FakePool(0), opts)
    await mon.start()
    try:
        # Two LiveKit checks ran meanwhile: an enabled Letta check would have run as often.
        await wait_for_async(lambda: mon.book.is_firing(A.LIVEKIT_UNREACHABLE), 5, "two checks")
        assert upstream.requests == 0
    finally:
        await mon.aclose()


async def test_webhook_retries_then_delivers_without_blocking(upstream: Upstream) -> None:
    """A webhook answering 503 twice gets the alert on the third attempt; enqueueing never waits."""
    upstream.fail_next = 2
    book = AlertBook(lambda: 1_700_000_000.0)
    sinks = WebhookSinks([upstream.url + "/hook"], "", host="h", wall=lambda: 1_700_000_000.0,
                         firing=book.firing, opts=SinkOptions(backoff_base_s=0.05, attempts=4))
    change = book.fire(A.HEARTBEAT_FAILED, "probe failed")
    assert change is not None
    sinks.on_change(change)  # before delivery runs: only queued
    task = asyncio.create_task(sinks.run())
    try:
        await wait_for_async(lambda: sinks.generic[0].delivered == 1, 5, "delivery")
        assert len(upstream.bodies) == 3 and upstream.bodies[-1]["alert"] == A.HEARTBEAT_FAILED
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_webhook_queue_is_bounded() -> None:
    """With the target down, the queue keeps only the newest payloads and counts the dropped."""
    book = AlertBook(lambda: 0.0)
    sinks = WebhookSinks(["http://127.0.0.1:9/hook"], "", host="h", wall=lambda: 0.0,
                         firing=book.firing, opts=SinkOptions(queue_size=3))
    for _ in range(5):
        change = book.fire(A.NO_READY_WORKERS, "x")
        assert change is not None
        sinks.on_change(change)
        book.resolve(A.NO_READY_WORKERS)
    assert sinks.generic[0].queue.qsize() == 3 and sinks.generic[0].dropped == 2
