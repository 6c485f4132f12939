"""GET /healthz, /readyz and the self-contained /debug page."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.livekit


async def test_health_and_ready_when_livekit_answers(livekit_server_module, make_proxy):
    """/healthz is 200; /readyz is 200 once LiveKit answers ListRooms."""
    proxy = await make_proxy(livekit_server_module)
    assert (await proxy.call("GET", "/healthz")).body == {"status": "ok"}
    assert (await proxy.call("GET", "/readyz")).body == {"status": "ready"}


async def test_debug_page_loads_nothing_from_elsewhere(livekit_server_module, make_proxy):
    """The debug page is one HTML document with no external URL, under a CSP that forbids any."""
    proxy = await make_proxy(livekit_server_module)
    page = await proxy.call("GET", "/debug")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page.text, re.I)
    for route in ("/api/agents", "/api/dispatch-agent", "/api/token"):
        assert route in page.text  # it drives the real API
