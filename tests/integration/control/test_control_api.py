"""The control API over a real unix socket, against an in-memory SupervisorView."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_view import FakeView

from voiceops.supervisor import control
from voiceops.supervisor.control import ControlServer, ControlSocketError


@pytest.fixture
async def server(view: FakeView, sock_dir: Path) -> AsyncIterator[ControlServer]:
    srv = await control.start_control_server(view, sock_dir / "run" / "control.sock")
    yield srv
    await srv.aclose()


async def raw(path: Path, method: str, route: str, data: bytes | None = None
              ) -> tuple[int, dict[str, Any]]:
    """A request with an arbitrary body, bypassing the client's JSON encoding."""
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=30)
    async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.request(method, f"http://x{route}", data=data) as resp):
        return resp.status, await resp.json(content_type=None)


async def test_status_returns_the_view_status(server: ControlServer, view: FakeView) -> None:
    """GET /status answers 200 with exactly the view's status JSON."""
    status, body = await control.request(server.socket_path, "GET", "/status")
    assert status == 200
    assert body == json.loads(json.dumps(view.status()))


async def test_scale_calls_the_view(server: ControlServer, view: FakeView) -> None:
    """POST /scale passes the count to the view and returns its result with success true."""
    status, body = await control.request(server.socket_path, "POST", "/scale", {"count": 4})
    assert status == 200
    assert body == {"success": True, "desired": 4, "message": "scaling to 4 workers"}
    assert view.calls == [("scale", 4)]


@pytest.mark.parametrize("name", ["worker-1", "all"])
async def test_restart_accepts_a_process_or_all(server: ControlServer, view: FakeView,
                                                name: str) -> None:
    """POST /restart takes a known process name or 'all' and reaches the view."""
    status, body = await control.request(server.socket_path, "POST", "/restart", {"name": name})
    assert status == 200 and body["success"] is True
    assert view.calls == [("restart", name)]


async def test_dispatch_timeline_or_404(server: ControlServer) -> None:
    """GET /dispatches/ID answers the tracked timeline, and 404 naming the id when untracked."""
    status, body = await control.request(server.socket_path, "GET", "/dispatches/AD_known")
    assert status == 200 and body["joined_after_s"] == 0.4
    status, body = await control.request(server.socket_path, "GET", "/dispatches/AD_other")
    assert status == 404 and "AD_other" in body["error"]["message"]


async def test_drain_calls_the_view(server: ControlServer, view: FakeView) -> None:
    """POST /drain drains the named process."""
    status, body = await control.request(server.socket_path, "POST", "/drain",
                                         {"name": "worker-0"})
    assert (status, body) == (200, {"success": True, "draining": "worker-0"})
    assert view.calls == [("drain", "worker-0")]


@pytest.mark.parametrize(("method", "route", "data", "want_status", "want_code", "in_message"), [
    ("POST", "/scale", b"{not json", 400, "bad_json", "JSON"),
    ("POST", "/scale", b"[3]", 400, "bad_request", "object"),
    ("POST", "/scale", b'{"count": "3"}', 400, "bad_request", "count"),
    ("POST", "/scale", b'{"count": true}', 400, "bad_request", "count"),
    ("POST", "/scale", b'{"count": 1.5}', 400, "bad_request", "count"),
    ("POST", "/scale", b'{"count": -1}', 400, "bad_request", ">= 0"),
    ("POST", "/scale", b"{}", 400, "bad_request", "count: required"),
    ("POST", "/scale", b'{"count": 2, "force": true}', 400, "bad_request", "force"),
    ("POST", "/restart", b'{"name": 3}', 400, "bad_request", "name"),
    ("POST", "/restart", b'{"name": ""}', 400, "bad_request", "name"),
    ("POST", "/restart", b'{"name": "worker-9"}', 404, "unknown_process", "worker-9"),
    ("POST", "/drain", b'{"name": "all"}', 404, "unknown_process", "all"),
    ("GET", "/nope", None, 404, "not_found", "/nope"),
    ("GET", "/scale", None, 405, "method_not_allowed", "GET"),
    ("POST", "/scale", b"{" + b" " * (control.MAX_BODY_BYTES + 10) + b"}", 413, "too_large",
     "bytes"),
])
async def test_bad_input_gets_a_specific_4xx(server: ControlServer, view: FakeView, method: str,
                                             route: str, data: bytes | None, want_status: int,
                                             want_code: str, in_message: str) -> None:
    """Malformed or impossible requests answer the right 4xx error; the view is never called."""
    status, body = await raw(server.socket_path, method, route, data)
    assert status == want_status
    assert body["success"] is False
    assert body["error"]["code"] == want_code
    assert in_message in body["error"]["message"]
    assert view.calls == []


async def test_control_error_keeps_its_status(server: ControlServer) -> None:
    """A ControlError raised by the view answers with its own status and message."""
    status, body = await control.request(server.socket_path, "POST", "/scale", {"count": 99})
    assert status == 409
    assert body["error"] == {"code": "conflict", "message": "count: at most 8 workers on this host"}


async def test_a_bug_answers_500_without_details(server: ControlServer, view: FakeView) -> None:
    """An unexpected exception answers 500 'internal error' and never leaks its message."""
    view.broken = True
    status, body = await control.request(server.socket_path, "GET", "/status")
    assert (status, body["error"]["code"]) == (500, "internal")
    assert "secret" not in json.dumps(body)


async def test_socket_is_private(server: ControlServer) -> None:
    """The socket is mode 0600 in a directory created 0700."""
    st = server.socket_path.lstat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(server.socket_path.parent.stat().st_mode) == 0o700


async def test_stale_socket_is_replaced(view: FakeView, sock_dir: Path) -> None:
    """A socket file nobody answers on (a crashed supervisor's) is replaced by a working one."""
    path = sock_dir / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays behind, refusing connections
    with pytest.raises(control.NotRunning):
        await control.request(path, "GET", "/status")
    srv = await control.start_control_server(view, path)
    try:
        status, _ = await control.request(path, "GET", "/status")
        assert status == 200
        assert sorted(os.listdir(sock_dir)) == ["control.sock"]  # no temporary file left
    finally:
        await srv.aclose()


async def test_second_server_is_refused(server: ControlServer, view: FakeView) -> None:
    """Starting on a socket a live supervisor answers on fails, and the first keeps serving."""
    with pytest.raises(ControlSocketError, match="another voiceops supervisor is running"):
        await control.start_control_server(view, server.socket_path)
    status, _ = await control.request(server.socket_path, "GET", "/status")
    assert status == 200


async def test_a_regular_file_is_not_replaced(view: FakeView, sock_dir: Path) -> None:
    """A non-socket file at the socket path is refused and left untouched."""
    path = sock_dir / "control.sock"
    path.write_text("mine")
    with pytest.raises(ControlSocketError, match="not a socket"):
        await control.start_control_server(view, path)
    assert path.read_text() == "mine"


async def test_aclose_removes_the_socket(view: FakeView, sock_dir: Path) -> None:
    """After aclose the socket file is gone and the client reports 'not running'."""
    srv = await control.start_control_server(view, sock_dir / "control.sock")
    await srv.aclose()
    assert not srv.socket_path.exists()
    with pytest.raises(control.NotRunning, match="no control socket"):
        await control.request(srv.socket_path, "GET", "/status")


async def test_aclose_spares_a_successors_socket(view: FakeView, sock_dir: Path) -> None:
    """Closing an old server never deletes a socket file that another server now owns."""
    path = sock_dir / "control.sock"
    old = await control.start_control_server(view, path)
    path.unlink()
    new = await control.start_control_server(view, path)
    try:
        await old.aclose()
        status, _ = await asyncio.wait_for(control.request(path, "GET", "/status"), 30)
        assert status == 200
    finally:
        await new.aclose()
