"""API keys, CORS allow-list and rate limits on /api/*: refused requests make no dispatch."""

from __future__ import annotations

import uuid

import pytest
from proxy_helpers import OTHER_KEY, PROXY_KEY, dispatches_in

pytestmark = pytest.mark.livekit
ALLOWED = "http://app.example.test"


def room_name() -> str:
    return f"sec-{uuid.uuid4().hex[:10]}"


async def test_missing_key_is_401_and_makes_no_dispatch(livekit_server_module, make_proxy,
                                                        event_sink):
    """With proxy keys configured, a request without a key gets 401 and nothing is dispatched."""
    proxy = await make_proxy(livekit_server_module, api_keys=frozenset({PROXY_KEY}))
    room = room_name()
    ans = await proxy.dispatch({"room": room})
    assert ans.status == 401 and ans.error_code == "unauthorized"
    assert ans.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert await dispatches_in(livekit_server_module, room) == []
    assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "unauthorized"


async def test_wrong_key_is_403_and_makes_no_dispatch(livekit_server_module, make_proxy):
    """A key that is not configured gets 403 and nothing is dispatched."""
    proxy = await make_proxy(livekit_server_module, api_keys=frozenset({PROXY_KEY}))
    room = room_name()
    ans = await proxy.dispatch({"room": room}, headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert ans.status == 403 and ans.error_code == "forbidden"
    basic = await proxy.dispatch({"room": room}, headers={"Authorization": f"Basic {PROXY_KEY}"})
    assert basic.status == 401
    assert await dispatches_in(livekit_server_module, room) == []


async def test_right_key_dispatches(livekit_server_module, make_proxy):
    """The configured key is accepted on /api/*; health routes need no key."""
    proxy = await make_proxy(livekit_server_module, api_keys=frozenset({PROXY_KEY, OTHER_KEY}))
    ans = await proxy.dispatch({"room": room_name()},
                               headers={"Authorization": f"Bearer {PROXY_KEY}"})
    assert ans.status == 200, ans.text
    assert (await proxy.call("GET", "/healthz")).status == 200


async def test_disallowed_origin_is_403_and_makes_no_dispatch(livekit_server_module, make_proxy,
                                                              event_sink):
    """A browser request from an origin not in proxy.allowed_origins is refused before dispatch."""
    proxy = await make_proxy(livekit_server_module, allowed_origins=[ALLOWED])
    room = room_name()
    ans = await proxy.dispatch({"room": room}, headers={"Origin": "http://evil.example.test"})
    assert ans.status == 403 and ans.error_code == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in ans.headers
    assert await dispatches_in(livekit_server_module, room) == []
    assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "unauthorized"


async def test_allowed_origin_gets_cors_headers_never_a_wildcard(livekit_server_module,
                                                                 make_proxy):
    """An allowed origin is echoed back (not '*'), on success and on errors alike."""
    proxy = await make_proxy(livekit_server_module, allowed_origins=[ALLOWED])
    ok = await proxy.dispatch({"room": room_name()}, headers={"Origin": ALLOWED})
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    bad = await proxy.dispatch({"room": "a b"}, headers={"Origin": ALLOWED})
    assert bad.status == 400 and bad.headers["Access-Control-Allow-Origin"] == ALLOWED
    own = await proxy.call("GET", "/api/agents",
                           headers={"Origin": f"http://127.0.0.1:{proxy.client.port}"})
    assert own.status != 403  # the proxy's own debug page may call its API


async def test_preflight_allowed_and_refused(livekit_server_module, make_proxy):
    """OPTIONS preflight: 204 with the allowed methods for an allowed origin, 403 otherwise."""
    proxy = await make_proxy(livekit_server_module, allowed_origins=[ALLOWED],
                             api_keys=frozenset({PROXY_KEY}))
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    ok = await proxy.call("OPTIONS", "/api/dispatch-agent", headers={**pre, "Origin": ALLOWED})
    assert ok.status == 204  # no key needed: browsers never send credentials on a preflight
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    refused = await proxy.call("OPTIONS", "/api/dispatch-agent",
                               headers={**pre, "Origin": "http://evil.example.test"})
    assert refused.status == 403


async def test_rate_limit_answers_429_with_retry_after(livekit_server_module, make_proxy,
                                                       event_sink):
    """Past proxy.rate_limit_per_minute a client gets 429 with Retry-After and no dispatch."""
    proxy = await make_proxy(livekit_server_module, rate_limit_per_minute=2)
    rooms = [room_name() for _ in range(3)]
    answers = [await proxy.dispatch({"room": r}) for r in rooms]
    assert [a.status for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.error_code == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert await dispatches_in(livekit_server_module, rooms[2]) == []
    assert (await event_sink.wait_for("dispatch_failed"))["reason"] == "rate_limited"
    assert (await proxy.call("GET", "/healthz")).status == 200  # health is never rate limited


async def test_token_keys_are_separate_from_dispatch_keys(livekit_server_module, make_proxy):
    """proxy.token_api_keys_file: /api/token takes only its own keys, dispatches only theirs."""
    proxy = await make_proxy(livekit_server_module, api_keys=frozenset({PROXY_KEY}),
                             token_api_keys=frozenset({OTHER_KEY}))
    body = {"room": room_name(), "identity": "caller-1"}
    with_token_key = {"Authorization": f"Bearer {OTHER_KEY}"}
    with_dispatch_key = {"Authorization": f"Bearer {PROXY_KEY}"}
    assert (await proxy.call("POST", "/api/token", body=body)).status == 401
    assert (
        await proxy.call("POST", "/api/token", body=body, headers=with_dispatch_key)
    ).status == 403
    assert (await proxy.call("POST", "/api/token", body=body, headers=with_token_key)).status == 200
    assert (await proxy.dispatch({"room": room_name()}, headers=with_token_key)).status == 403
    assert (await proxy.dispatch({"room": room_name()}, headers=with_dispatch_key)).status == 200


async def test_dispatch_to_a_reserved_room_is_refused(livekit_server_module, make_proxy):
    """The heartbeat's probe rooms (voiceops-…) cannot be dispatched to from a browser."""
    proxy = await make_proxy(livekit_server_module)
    ans = await proxy.dispatch({"room": "voiceops-probe-host-1"})
    assert ans.status == 400 and ans.error_code == "reserved_room"
    assert await dispatches_in(livekit_server_module, "voiceops-probe-host-1") == []
