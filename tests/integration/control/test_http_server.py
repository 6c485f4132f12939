"""The supervisor's HTTP endpoints (/metrics, /healthz, /readyz, /status) on a real port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fake_view import FakeView
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from voiceops import __version__
from voiceops.metrics import Metrics
from voiceops.supervisor.http import HttpServer, not_ready_reason, start_http_server


@pytest.fixture
async def metrics() -> Metrics:
    return Metrics("letta-voice-agent", CollectorRegistry())


@pytest.fixture
async def server(view: FakeView, metrics: Metrics) -> AsyncIterator[HttpServer]:
    srv = await start_http_server(view, metrics.registry, "127.0.0.1", 0)
    yield srv
    await srv.aclose()


async def get(srv: HttpServer, route: str) -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{srv.port}{route}"
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
                session.get(url) as resp):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_binds_the_requested_port_zero(server: HttpServer) -> None:
    """Port 0 binds a free port and reports it."""
    assert server.port > 0


async def test_metrics_exposition_parses(server: HttpServer, metrics: Metrics) -> None:
    """/metrics serves the registry as Prometheus text, with build info and live values."""
    metrics.add_process("worker-0")
    metrics.process_up.labels("worker-0").set(1)
    status, ctype, text = await get(server, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    build = [k for k in samples if k[0] == "voiceops_build_info"]
    assert len(build) == 1 and ("version", __version__) in build[0][1]
    assert samples[("voiceops_process_up", (("process", "worker-0"),))] == 1.0


async def test_readyz_follows_the_view(server: HttpServer, view: FakeView) -> None:
    """/readyz is 200 when the view is ready and 503 with a reason when not, flipping both ways."""
    assert (await get(server, "/readyz"))[0] == 200
    view.ready = False
    view.processes = [p for p in view.processes if p["kind"] != "worker"]
    status, ctype, text = await get(server, "/readyz")
    assert (status, ctype) == (503, "application/json; charset=utf-8")
    assert '"reason": "no ready workers (0/2)"' in text
    view.ready = True
    assert (await get(server, "/readyz"))[0] == 200


async def test_healthz_follows_liveness(server: HttpServer, view: FakeView) -> None:
    """/healthz is 200 while the supervisor is alive and 503 once it is not."""
    assert (await get(server, "/healthz"))[0] == 200
    view.alive = False
    assert (await get(server, "/healthz"))[0] == 503


async def test_status_is_the_view_status(server: HttpServer, view: FakeView) -> None:
    """/status serves the status JSON."""
    status, _, text = await get(server, "/status")
    assert status == 200
    assert json.loads(text) == json.loads(json.dumps(view.status()))


@pytest.mark.parametrize(("status", "reason"), [
    ({"state": "stopping", "pool": {"desired": 2, "ready": 2}}, "the supervisor is stopping"),
    ({"state": "running", "pool": {"desired": 4, "ready": 1, "parked": 3, "unhealthy": True}},
     "pool unhealthy: 3 of 4 workers parked after crash loops"),
    ({"state": "running", "pool": {"desired": 2, "ready": 0}}, "no ready workers (0/2)"),
    ({"state": "running", "pool": {"desired": 2, "ready": 1}, "summary": "proxy down"},
     "proxy down"),
])
def test_not_ready_reason_names_the_cause(status: dict[str, Any], reason: str) -> None:
    """The readiness reason names the most specific cause found in the status JSON."""
    assert not_ready_reason(status) == reason
