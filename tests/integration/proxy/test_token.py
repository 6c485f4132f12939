"""POST /api/token: a browser token LiveKit accepts, for exactly the requested room."""

from __future__ import annotations

import time

import jwt
import pytest
from livekit import api

pytestmark = pytest.mark.livekit


async def test_token_grants_join_to_that_room_only(livekit_server_module, make_proxy):
    """The token verifies with the server's key/secret and grants room_join for that room."""
    lk = livekit_server_module
    proxy = await make_proxy(lk, token_ttl_s=600)
    ans = await proxy.call("POST", "/api/token",
                           body={"room": "tok-room", "identity": "user-1", "name": "Ada L."})
    assert ans.status == 200, ans.text
    assert ans.body["url"] == lk.url
    claims = api.TokenVerifier(lk.api_key, lk.api_secret).verify(ans.body["token"])
    assert claims.identity == "user-1" and claims.name == "Ada L."
    assert claims.video.room_join is True and claims.video.room == "tok-room"
    assert not claims.video.room_admin and not claims.video.room_create
    # Only what a caller needs: a microphone, no camera/screen, no metadata changes, not hidden.
    assert list(claims.video.can_publish_sources) == ["microphone"]
    assert not claims.video.can_update_own_metadata and not claims.video.hidden
    assert not claims.video.recorder and not claims.video.agent
    raw = jwt.decode(ans.body["token"], options={"verify_signature": False})
    assert time.time() + 590 <= raw["exp"] <= time.time() + 610  # proxy.token_ttl_s


@pytest.mark.parametrize(("body", "message"), [
    ({"identity": "u"}, "room: missing (a required field)"),
    ({"room": "r"}, "identity: missing (a required field)"),
    ({"room": "r", "identity": "has space"}, "identity: contains characters"),
    ({"room": "r", "identity": "u", "name": "x" * 200}, "name: is 200 characters long"),
    ({"room": "r", "identity": "u", "admin": True}, "unknown field 'admin'"),
])
async def test_token_input_is_validated(livekit_server_module, make_proxy, body, message):
    """Room and identity are validated and the error says which field is wrong."""
    proxy = await make_proxy(livekit_server_module)
    ans = await proxy.call("POST", "/api/token", body=body)
    assert ans.status == 400
    assert ans.body["error"]["message"].startswith(message), ans.text
