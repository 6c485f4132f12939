"""CORS as a browser sees it, on every route the SDKs call (runs against a real server too)."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from livekit.protocol import rtc as proto

try:
    from .rtc_fakehub import mint_token
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_fakehub import mint_token

pytestmark = pytest.mark.livekit

ORIGIN = "http://debug-page.test:9000"
# (path, method, headers a browser asks for): livekit-client's validate calls and Twirp.
ROUTES = [
    ("/rtc/v1/validate", "GET", "authorization"),
    ("/rtc/validate", "GET", "authorization"),
    ("/rtc/v1", "GET", "authorization"),
    ("/rtc", "GET", "authorization"),
    ("/twirp/livekit.RoomService/ListRooms", "POST", "authorization,content-type"),
    ("/twirp/livekit.RoomService/ListParticipants", "POST", "authorization,content-type"),
    ("/twirp/livekit.AgentDispatchService/CreateDispatch", "POST", "authorization,content-type"),
]


def _http(server) -> str:
    return server.http_url.rstrip("/")


@pytest.mark.parametrize(("path", "method", "asked"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_preflight_is_allowed(
    livekit_server_module, path: str, method: str, asked: str
) -> None:
    """An OPTIONS preflight gets 204 with the origin echoed, the method, headers and a max age."""
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": method,
               "Access-Control-Request-Headers": asked}
    async with aiohttp.ClientSession() as http, http.options(
            _http(livekit_server_module) + path, headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert method in resp.headers["Access-Control-Allow-Methods"].upper()
        allowed = {
            h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert set(asked.split(",")) <= allowed
        assert resp.headers["Access-Control-Max-Age"] == "86400"


async def test_responses_and_errors_carry_the_origin(livekit_server_module) -> None:
    """Real requests from a page, answered or refused, carry Access-Control-Allow-Origin."""
    server = livekit_server_module
    token = mint_token("cors-room", "browser", key=server.api_key, secret=server.api_secret)
    join = base64.urlsafe_b64encode(proto.WrappedJoinRequest(
        join_request=proto.JoinRequest(metadata="page").SerializeToString()).SerializeToString()).decode()
    cases = [("/rtc/validate", {}, f"Bearer {token}", 200),
             ("/rtc/v1/validate", {"join_request": join}, f"Bearer {token}", 200),
             ("/rtc/v1/validate", {"join_request": join}, "Bearer not-a-token", 401)]
    async with aiohttp.ClientSession() as http:
        for path, params, auth, status in cases:
            async with http.get(_http(server) + path, params=params,
                                headers={"Origin": ORIGIN, "Authorization": auth}) as resp:
                assert resp.status == status, path
                assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN, path
