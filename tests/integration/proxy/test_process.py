"""`python -m voiceops.proxy` as a real process: ready event, dispatch events, graceful SIGTERM,
config errors exit 78, and no secret in any answer or log line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from proxy_helpers import (
    LETTA_KEY,
    PROXY_KEY,
    WAIT_S,
    ProxyProcess,
    assert_gone,
    assert_no_secret,
    write_config,
)

from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.livekit.pytest_plugin import EmulatorProcess, LiveKitServer
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process]
LONG_LK_SECRET = "lk-secret-9d2f7a1c5e8b3f6a0d4c7e1b9a2f5c8d"


async def start_proxy(tmp_path: Path, sink: EventRecorder, lk_url: str, secret: str,
                      **proxy: object) -> tuple[ProxyProcess, str]:
    config = write_config(tmp_path / "proxy.toml", lk_url, **proxy)
    proc = ProxyProcess(config, sink.path, secret, tmp_path / "proxy.log")
    try:
        # The proxy's own: an emulator started with this sink in its env announces itself too.
        ready = await sink.wait_for("ready", process="proxy")
    except AssertionError:
        proc.kill()
        raise AssertionError(f"proxy not ready; log:\n{proc.log_text()}") from None
    assert ready["process"] == "proxy" and ready["pid"] == proc.proc.pid
    return proc, f"http://{ready['listen']}"


def twirp_calls(lk: LiveKitServer) -> int:
    return sum(lk.state()["twirp_calls"].values())


async def wait_for_upstream_calls(lk: LiveKitServer, at_least: int) -> None:
    """Until the emulator has received ``at_least`` Twirp calls (counted on arrival)."""
    await wait_for_async(lambda: twirp_calls(lk) >= at_least, WAIT_S, "the proxy calling LiveKit",
                         0.02)


async def refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as resp:
            await resp.read()
    except aiohttp.ClientConnectorError:
        return True
    return False


@pytest.mark.faults
async def test_ready_dispatch_and_graceful_sigterm(livekit_server, event_sink, tmp_path):
    """Ready carries the bound address; SIGTERM stops accepting, finishes the in-flight dispatch,
    and exits 0."""
    proc, url = await start_proxy(tmp_path, event_sink, livekit_server.url,
                                  livekit_server.api_secret)
    try:
        await wait_for_upstream_calls(livekit_server, 1)  # its first room list
        before = twirp_calls(livekit_server)
        livekit_server.faults.set(twirp_delay_s=2)  # each LiveKit call takes 2 s
        room = f"proc-{uuid.uuid4().hex[:8]}"
        async with aiohttp.ClientSession() as session:
            inflight = asyncio.ensure_future(session.post(url + "/api/dispatch-agent",
                                                          json={"room": room}))
            await wait_for_upstream_calls(livekit_server, before + 1)
            proc.proc.send_signal(signal.SIGTERM)
            # stops accepting while the dispatch still runs
            await wait_for_async(lambda: refused(url), WAIT_S, "no longer accepting after SIGTERM",
                                 0)
            assert not inflight.done()
            resp = await asyncio.wait_for(inflight, WAIT_S)
            body = await resp.json()
            resp.release()
        assert resp.status == 200 and body["success"] is True, body
        created = await event_sink.wait_for("dispatch_created")
        assert created["dispatch_id"] == body["dispatch_id"] and created["process"] == "proxy"
        assert created["latency_s"] >= 2.0  # the delayed LiveKit call was measured
        # The one SIGTERM ends it: no second signal, which could land while the proxy swaps its
        # handler for SIG_IGN on the way out (asyncio restores SIG_DFL in between).
        assert proc.proc.wait(WAIT_S) == 0
    finally:
        proc.kill()
    assert_gone([proc.proc.pid])


async def test_no_secret_in_answers_or_logs(event_sink, tmp_path):
    """Across successes and every kind of failure, no secret appears in a body or a log line."""
    if os.environ.get("LIVEKIT_URL"):
        pytest.skip("needs an emulator started with a known long secret")
    emu = EmulatorProcess(("--api-secret", LONG_LK_SECRET))
    lk = emu.start()
    keys = tmp_path / "keys"
    keys.write_text(PROXY_KEY + "\n", encoding="utf-8")
    proc, url = await start_proxy(tmp_path, event_sink, lk.url, LONG_LK_SECRET,
                                  api_keys_file=str(keys))
    secrets = (LONG_LK_SECRET, LETTA_KEY, PROXY_KEY)
    auth = {"Authorization": f"Bearer {PROXY_KEY}"}
    try:
        async with aiohttp.ClientSession() as s:
            calls = [("POST", "/api/dispatch-agent", {"room": "leak-room"}, auth),
                     ("POST", "/api/dispatch-agent", {"room": "bad room"}, auth),
                     ("POST", "/api/dispatch-agent", {"room": "x"}, {}),
                     ("POST", "/api/dispatch-agent", {"room": "x"},
                      {"Authorization": "Bearer nope"}),
                     ("POST", "/api/token", {"room": "leak-room", "identity": "u"}, auth),
                     ("GET", "/api/agents", None, auth),
                     ("POST", "/livekit/webhook", {"event": "x"}, {"Authorization": "x.y.z"}),
                     ("GET", "/readyz", None, {}), ("GET", "/debug", None, {})]
            statuses = []
            for method, path, body, headers in calls:
                async with s.request(method, url + path, json=body, headers=headers) as resp:
                    statuses.append(resp.status)
                    assert_no_secret(await resp.text() + str(dict(resp.headers)), secrets)
        assert statuses == [200, 400, 401, 403, 200, 503, 401, 200, 200]
        assert proc.terminate() == 0
        log = proc.log_text()
        assert '"event": "dispatch_created"' in log and '"event": "ready"' in log
        assert_no_secret(log, secrets)
    finally:
        proc.kill()
        emu.stop()
    assert_gone([proc.proc.pid, lk.pid or 0])


@pytest.mark.parametrize("case", ["missing-config", "missing-secret", "bad-key"])
def test_config_errors_exit_78_naming_the_key(tmp_path, case):
    """A bad config or a missing LiveKit secret exits 78 with a message naming the key."""
    config = write_config(tmp_path / "p.toml", "ws://127.0.0.1:7880")
    env = {k: v for k, v in os.environ.items() if k not in ("LIVEKIT_API_SECRET",
                                                           "CREDENTIALS_DIRECTORY")}
    expected = "livekit.api_secret_file"
    if case == "missing-config":
        config, expected = tmp_path / "nope.toml", "file not found"
    elif case == "bad-key":
        config.write_text(config.read_text() + "max_body_bytes = 0\n")
        env["LIVEKIT_API_SECRET"], expected = LONG_LK_SECRET, "proxy.max_body_bytes"
    res = subprocess.run([sys.executable, "-m", "voiceops.proxy", "--config", str(config)],
                         env=env, capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert res.returncode == 78, res.stderr
    assert expected in res.stderr and "Traceback" not in res.stderr
