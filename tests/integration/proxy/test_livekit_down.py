"""LiveKit failing or gone: clear 503/504 answers, the proxy stays up, and serves again after."""

from __future__ import annotations

import os
import uuid

import pytest
from proxy_helpers import assert_gone, dispatches_in

from voiceops.testing.livekit.pytest_plugin import EmulatorProcess
from voiceops.testing.procs import free_port

pytestmark = pytest.mark.livekit
FAST_READY = {"ready_cache_s": 0.0}


def room_name() -> str:
    return f"down-{uuid.uuid4().hex[:10]}"


@pytest.mark.faults
async def test_twirp_503_is_503_then_recovers(livekit_server, make_proxy, event_sink):
    """LiveKit answering 503 → dispatch and /readyz say 503 with the URL; cleared → 200 again."""
    proxy = await make_proxy(livekit_server, option_overrides=FAST_READY)
    livekit_server.faults.set(twirp_error=503)
    room = room_name()
    ans = await proxy.dispatch({"room": room})
    assert ans.status == 503 and ans.error_code == "livekit_unavailable"
    assert f"LiveKit unavailable at {livekit_server.http_url}" in ans.body["error"]["message"]
    failed = await event_sink.wait_for("dispatch_failed")
    assert failed["reason"] == "livekit_error" and failed["room"] == room
    ready = await proxy.call("GET", "/readyz")
    assert ready.status == 503 and livekit_server.http_url in ready.body["error"]["message"]
    livekit_server.faults.clear()
    assert (await proxy.dispatch({"room": room})).status == 200
    assert (await proxy.call("GET", "/readyz")).status == 200


@pytest.mark.faults
async def test_slow_livekit_is_504_timeout(livekit_server, make_proxy, event_sink):
    """A LiveKit call slower than the call timeout → 504 and dispatch_failed{reason=timeout}."""
    proxy = await make_proxy(livekit_server, option_overrides={"livekit_call_timeout_s": 0.3})
    livekit_server.faults.set(twirp_delay_s=2)
    ans = await proxy.dispatch({"room": room_name()})
    assert ans.status == 504 and ans.error_code == "livekit_timeout"
    assert "did not answer" in ans.body["error"]["message"]
    assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "timeout"


@pytest.mark.faults
@pytest.mark.process
async def test_livekit_stopped_is_503_and_proxy_serves_again_after_restart(make_proxy,
                                                                           event_sink):
    """Emulator stopped → 503 'LiveKit unreachable at <url>'; restarted on its port → 200 again."""
    if os.environ.get("LIVEKIT_URL"):
        pytest.skip("needs an emulator the test can stop and start")
    port = free_port()
    emu = EmulatorProcess(("--port", str(port)))
    lk = emu.start()
    pids = [lk.pid or 0]
    try:
        proxy = await make_proxy(lk, option_overrides=FAST_READY)
        assert (await proxy.dispatch({"room": room_name()})).status == 200
        emu.stop()
        room = room_name()
        ans = await proxy.dispatch({"room": room})
        assert ans.status == 503 and ans.error_code == "livekit_unreachable"
        assert ans.body["error"]["message"].startswith(f"LiveKit unreachable at {lk.http_url}")
        assert (await proxy.call("GET", "/readyz")).status == 503
        assert (await proxy.call("GET", "/healthz")).status == 200  # alive, just not ready
        lk = emu.start()
        pids.append(lk.pid or 0)
        assert (await proxy.call("GET", "/readyz")).status == 200
        ans = await proxy.dispatch({"room": room})
        assert ans.status == 200, ans.text
        assert len(await dispatches_in(lk, room)) == 1
    finally:
        emu.stop()
    assert_gone(pids)
