"""GET /api/agents: Letta agents via letta-client from a fake Letta, cached; 503 when down."""

from __future__ import annotations

import pytest
from proxy_helpers import LETTA_KEY

from voiceops.testing.procs import free_port

pytestmark = pytest.mark.livekit


async def test_lists_letta_agents_and_caches_them(livekit_server_module, make_proxy, fake_letta):
    """Agents come back as {id, name, description}; a second call within the cache hits no Letta."""
    fake, url = fake_letta
    proxy = await make_proxy(livekit_server_module, letta_url=url)
    first = await proxy.call("GET", "/api/agents")
    assert first.status == 200, first.text
    assert first.body == {"agents": [
        {"id": "agent-11111111-aaaa", "name": "Ada", "description": "support agent"},
        {"id": "agent-22222222-bbbb", "name": "Bob", "description": ""}]}
    calls = fake.calls
    assert (await proxy.call("GET", "/api/agents")).body == first.body
    assert fake.calls == calls  # served from the cache
    assert fake.auth_headers[0] == f"Bearer {LETTA_KEY}"  # the key goes upstream, never back


async def test_letta_down_is_503_with_a_clear_message(livekit_server_module, make_proxy):
    """Nothing listening at letta.base_url → 503 naming the Letta URL."""
    url = f"http://127.0.0.1:{free_port()}"
    proxy = await make_proxy(livekit_server_module, letta_url=url)
    ans = await proxy.call("GET", "/api/agents")
    assert ans.status == 503 and ans.error_code == "letta_unreachable"
    assert ans.body["error"]["message"] == f"Letta unreachable at {url}"
