"""GET /healthz and /readyz (the debug page has its own tests in test_debug_page.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.livekit


async def test_health_and_ready_when_livekit_answers(livekit_server_module, make_proxy):
    """/healthz is 200; /readyz is 200 once LiveKit answers ListRooms."""
    proxy = await make_proxy(livekit_server_module)
    assert (await proxy.call("GET", "/healthz")).body == {"status": "ok"}
    assert (await proxy.call("GET", "/readyz")).body == {"status": "ready"}
