"""Issue 11, item 2: no input gives a 500. Hostile requests against the real proxy process."""

from __future__ import annotations

import asyncio
import collections
import random

import psutil
import pytest
from hostile import Request, held_open_s, request, send
from test_process import start_proxy

from voiceops.proxy.options import BODY_TIMEOUT_S, HEADER_TIMEOUT_S

pytestmark = [pytest.mark.livekit, pytest.mark.process]
REQUESTS = 10_000
CONCURRENCY = 32
STALLED = 100  # slow clients, each holding one connection
MAX_RSS_GROWTH_MB = 20


async def _fuzz(host: str, port: int, rng: random.Random, count: int,
                statuses: collections.Counter[int | None]) -> None:
    queue = [request(rng, f"{host}:{port}") for _ in range(count)]

    async def worker() -> None:
        while queue:
            statuses[await send(host, port, queue.pop())] += 1
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def test_hostile_requests_never_get_a_5xx(livekit_server_module, event_sink, fake_letta,
                                                 tmp_path):
    """10,000 generated hostile requests: zero 5xx, no trace in the log, memory flat, and slow
    clients (partial headers, partial bodies) are cut off by the read timeouts."""
    proc, url = await start_proxy(tmp_path, event_sink, livekit_server_module.url,
                                  livekit_server_module.api_secret, letta_url=fake_letta[1],
                                  rate_limit_per_minute=0)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        rng = random.Random(11)
        limit = max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 5
        stalled = [asyncio.ensure_future(held_open_s(host, int(port), data, limit + 5))
                   for data in [b"POST /api/token HTTP/1.1\r\nHost: x\r\n"] * (STALLED // 2)
                   + [b"POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"]
                   * (STALLED // 2)]
        statuses: collections.Counter[int | None] = collections.Counter()
        await _fuzz(host, int(port), rng, 2_000, statuses)  # warm-up: caches, buffers, pools
        rss_before = psutil.Process(proc.proc.pid).memory_info().rss
        await _fuzz(host, int(port), rng, REQUESTS - 2_000, statuses)
        rss_after = psutil.Process(proc.proc.pid).memory_info().rss
        held = await asyncio.gather(*stalled)
        assert proc.proc.poll() is None, "the proxy died"
        assert (await send(host, int(port), request_for_health(host, port))) == 200
    finally:
        assert proc.terminate() == 0
    fives = {s: n for s, n in statuses.items() if s is not None and s >= 500}
    assert not fives, f"5xx answers: {fives}; all: {statuses}"
    assert sum(statuses.values()) == REQUESTS
    assert sum(n for s, n in statuses.items() if s is not None) > REQUESTS * 0.9, statuses
    log = proc.log_text()
    assert "Traceback" not in log and "unhandled_error" not in log, log[-3000:]
    growth_mb = (rss_after - rss_before) / 2**20
    print(f"fuzz: {dict(statuses)}; RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MB; "
          f"slow clients cut after at most {max(held):.1f} s")
    assert growth_mb < MAX_RSS_GROWTH_MB, f"RSS grew {growth_mb:.1f} MB over 8,000 requests"
    assert max(held) < limit, f"slow clients held connections for up to {max(held):.1f} s"


def request_for_health(host: str, port: str) -> Request:
    return Request(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                   .encode())


@pytest.mark.parametrize(("path", "body", "headers", "status"), [
    ("/api/dispatch-agent", b"[" * 10_000 + b"]" * 10_000, {}, 400),
    ("/api/dispatch-agent", b'{"room": ' + b"7" * 5000 + b"}", {}, 400),
    ("/api/token", b'{"room": "r", "identity": ' + b"1" * 5000 + b"}", {}, 400),
    ("/livekit/webhook", b'{"event": "\xff"}', {"Authorization": "x"}, 400),
    # The charset is ignored (LiveKit sends UTF-8): the unsigned body is then a 401.
    ("/livekit/webhook", b"{}", {"Authorization": "x",
                                 "Content-Type": "application/json; charset=klingon"}, 401),
])
async def test_hostile_bodies_are_clean_400s_counted_as_bad_request(
        livekit_server_module, make_proxy, event_sink, path, body, headers, status):
    """Deep nesting, huge integers, non-UTF-8 and unknown charsets: 400 in the error shape (not
    500), and a dispatch counts as bad_request, not livekit_error."""
    proxy = await make_proxy(livekit_server_module, max_body_bytes=65536)
    ans = await proxy.call("POST", path, data=body, headers=headers)
    assert ans.status == status, ans.text
    assert ans.body["success"] is False
    assert ans.error_code in ("invalid_json", "bad_request", "bad_signature")
    if path == "/api/dispatch-agent":
        assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "bad_request"
