"""GET /api/dispatches/{id}: the supervisor's timeline of one dispatch, read-only, no room."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from proxy_helpers import PROXY_KEY

from voiceops.supervisor import control

pytestmark = pytest.mark.livekit
KNOWN = {"dispatch_id": "AD_known1", "room": "callers-private-room", "phase": "unanswered",
         "deadline_s": 10.0, "job_request_after_s": None, "joined_after_s": None,
         "redispatched": False, "diagnosis": "no JobRequest within 10 s: workers registered "
                                             "as 'voice' but dispatches ask for 'letta'"}


class TimelineView:
    """The one thing the route asks of the supervisor."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def dispatch_timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        self.asked.append(dispatch_id)
        return dict(KNOWN) if dispatch_id == KNOWN["dispatch_id"] else None


@pytest.fixture
async def supervisor_socket() -> AsyncIterator[tuple[str, TimelineView]]:
    tmp = Path(tempfile.mkdtemp(prefix="vo-tl-", dir="/tmp"))  # sun_path is 108 bytes
    view = TimelineView()
    server = await control.start_control_server(
        view, str(tmp / "control.sock"))  # type: ignore[arg-type]
    yield str(tmp / "control.sock"), view
    await server.aclose()
    shutil.rmtree(tmp, ignore_errors=True)


async def test_timeline_with_diagnosis_and_no_room(livekit_server_module, make_proxy,
                                                   supervisor_socket):
    """A tracked dispatch answers its phase and diagnosis; the room name is never in the answer."""
    path, view = supervisor_socket
    proxy = await make_proxy(livekit_server_module, option_overrides={"control_socket": path})
    ans = await proxy.call("GET", "/api/dispatches/AD_known1")
    assert ans.status == 200, ans.text
    body = ans.body
    assert body == {"success": True, **{k: v for k, v in KNOWN.items() if k != "room"}}
    assert "callers-private-room" not in ans.text
    assert view.asked == ["AD_known1"]


async def test_unknown_bad_and_unreachable(livekit_server_module, make_proxy, supervisor_socket,
                                           tmp_path):
    """404 for an untracked id, 400 for one that cannot be an id, 503 without a supervisor."""
    path, view = supervisor_socket
    proxy = await make_proxy(livekit_server_module, option_overrides={"control_socket": path})
    unknown = await proxy.call("GET", "/api/dispatches/AD_other")
    assert unknown.status == 404 and unknown.error_code == "unknown_dispatch"
    bad = await proxy.call("GET", "/api/dispatches/AD%20x%3B")
    assert bad.status == 400 and "dispatch_id" in bad.body["error"]["message"]
    assert view.asked == ["AD_other"]
    alone = await make_proxy(livekit_server_module,
                             option_overrides={"control_socket": str(tmp_path / "none.sock")})
    down = await alone.call("GET", "/api/dispatches/AD_known1")
    assert down.status == 503 and down.error_code == "supervisor_unavailable"


async def test_same_auth_as_the_other_api_routes(livekit_server_module, make_proxy,
                                                 supervisor_socket):
    """With proxy keys configured the timeline needs one too; the supervisor is not asked before."""
    path, view = supervisor_socket
    proxy = await make_proxy(livekit_server_module, api_keys=frozenset({PROXY_KEY}),
                             option_overrides={"control_socket": path})
    assert (await proxy.call("GET", "/api/dispatches/AD_known1")).status == 401
    assert view.asked == []
    ok = await proxy.call("GET", "/api/dispatches/AD_known1",
                          headers={"Authorization": f"Bearer {PROXY_KEY}"})
    assert ok.status == 200 and ok.body["phase"] == "unanswered"
