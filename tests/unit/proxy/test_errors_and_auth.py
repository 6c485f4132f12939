"""Pure pieces of the proxy: API-key checks, LiveKit/Letta error mapping, webhook id derivation."""

from __future__ import annotations

import asyncio

import httpx
import letta_client
import pytest
from livekit import api

from voiceops.proxy.dispatcher import KeyedLocks
from voiceops.proxy.errors import ApiError
from voiceops.proxy.livekit_gateway import map_server_error
from voiceops.proxy.middleware import check_api_key, key_matches
from voiceops.proxy.route_webhook import agent_ids
from voiceops.proxy.services import map_letta_error

URL = "http://lk.test:7880"


def test_key_matches_only_configured_keys():
    """Exact configured keys match; prefixes, extensions and empty strings do not."""
    keys = frozenset({"alpha-key", "beta-key"})
    assert key_matches("alpha-key", keys) and key_matches("beta-key", keys)
    assert not any(key_matches(k, keys) for k in ("alpha", "alpha-key2", "", "ALPHA-KEY"))


@pytest.mark.parametrize(("header", "status"), [
    ("", 401), ("alpha-key", 401), ("Basic alpha-key", 401), ("Bearer ", 401),
    ("Bearer wrong", 403)])
def test_check_api_key_statuses(header, status):
    """Missing or malformed credentials are 401; a wrong key is 403."""
    with pytest.raises(ApiError) as info:
        check_api_key(header, frozenset({"alpha-key"}))
    assert info.value.status == status and info.value.reason == "unauthorized"
    assert "alpha-key" not in info.value.message


def test_check_api_key_accepts_bearer_case_insensitively():
    """'bearer' in any case with a valid key passes."""
    check_api_key("bearer alpha-key", frozenset({"alpha-key"}))


@pytest.mark.parametrize(("status", "code", "want_status", "want_code", "reason"), [
    (503, "unavailable", 503, "livekit_unavailable", "livekit_error"),
    (504, "deadline_exceeded", 504, "livekit_timeout", "timeout"),
    (401, "unauthenticated", 502, "livekit_auth", "livekit_error"),
    (400, "invalid_argument", 502, "livekit_error", "livekit_error"),
    (500, "internal", 502, "livekit_error", "livekit_error"),
])
def test_livekit_errors_map_to_gateway_statuses(status, code, want_status, want_code, reason):
    """LiveKit's Twirp errors become 502/503/504 with the LiveKit URL in the message."""
    err = map_server_error(api.TwirpError(code, "boom", status=status), URL)
    assert (err.status, err.code, err.reason) == (want_status, want_code, reason)
    assert URL in err.message


def test_letta_errors_map_to_gateway_statuses():
    """Letta down is 503, slow is 504, a refused key is 502 naming LETTA_API_KEY."""
    req = httpx.Request("GET", "http://letta.test/v1/agents/")
    down = map_letta_error(letta_client.APIConnectionError(request=req), "http://letta.test")
    assert (down.status, down.message) == (503, "Letta unreachable at http://letta.test")
    assert map_letta_error(letta_client.APITimeoutError(req), "u").status == 504
    resp = httpx.Response(401, request=req)
    denied = map_letta_error(letta_client.AuthenticationError("no", response=resp, body=None), "u")
    assert denied.status == 502 and "LETTA_API_KEY" in denied.message


@pytest.mark.parametrize(("identity", "attrs", "want"), [
    ("agent-AJ_123", {}, ("AJ_123", "")),
    ("custom", {"voiceops.job_id": "AJ_9", "voiceops.dispatch_id": "AD_9"}, ("AJ_9", "AD_9")),
    ("agent-someone", {}, ("", "")),
])
def test_agent_ids_from_participant(identity, attrs, want):
    """Job and dispatch ids come from voiceops attributes or livekit-agents' default identity."""
    assert agent_ids(identity, attrs) == want


async def test_keyed_locks_serialise_one_key_and_forget_it():
    """Holders of one key run one at a time; other keys are not blocked; idle keys are dropped."""
    locks = KeyedLocks()
    order: list[str] = []
    release, a1_holds = asyncio.Event(), asyncio.Event()

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            if name == "a1":
                a1_holds.set()
                await release.wait()
            order.append(f"{name}-")

    first = asyncio.create_task(hold("a", "a1"))
    await asyncio.wait_for(a1_holds.wait(), 5)
    second = asyncio.create_task(hold("a", "a2"))
    await asyncio.wait_for(hold("b", "b1"), 5)  # not blocked by a1
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert order == ["a1+", "b1+", "b1-", "a1-", "a2+", "a2-"]
    assert len(locks) == 0
