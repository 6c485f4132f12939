"""The control API: HTTP/JSON on a unix socket, behind ``voiceops status|scale|restart|drain``.

Routes (all answers JSON)::

    GET  /status                       -> 200 view.status()
    POST /scale   {"count": N}         -> 200 {"success": true, ...view.scale(N)}
    POST /restart {"name": "worker-1" | "all"}
    POST /drain   {"name": "worker-1"}

Errors are ``{"success": false, "error": {"code", "message"}}``: 400 for bad input, 404 for an
unknown process or route, 405, 413, a :class:`ControlError`'s own status, 500 for a bug (logged;
the body says only "internal error").

The socket is the access control: mode 0600 in a directory created 0700. It is bound under a
temporary name, restricted, listening, then renamed over the final path, so there is no moment
when it exists with looser permissions or when a live socket is missing. A socket file nobody
answers on is stale and gets replaced; one somebody answers on means another supervisor is
running, and we refuse to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web

from voiceops.config import Config
from voiceops.supervisor.api import ControlError, SupervisorView

log = logging.getLogger(__name__)

SOCKET_NAME: Final = "control.sock"
FALLBACK_DIR: Final = Path("run")
MAX_BODY_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 128
PROBE_TIMEOUT_S: Final = 2.0
DEFAULT_TIMEOUT_S: Final = 30.0
_VIEW: Final = web.AppKey("view", SupervisorView)
_STATUS_CODES: Final = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                        409: "conflict", 413: "too_large", 503: "unavailable"}


class ControlSocketError(RuntimeError):
    """The control socket cannot be set up (in use by a live supervisor, not a socket, ...)."""


class ControlClientError(Exception):
    """The control request got no usable answer."""


class NotRunning(ControlClientError):
    """Nothing answers on the control socket."""

    def __init__(self, socket_path: str, detail: str) -> None:
        super().__init__(f"voiceops is not running ({detail} at {socket_path})")
        self.socket_path = socket_path


def default_socket_path(cfg: Config, env: Mapping[str, str] = os.environ) -> Path:
    """``control.socket``, else ``$RUNTIME_DIRECTORY/control.sock``, else ``./run/control.sock``."""
    if cfg.control.socket:
        return Path(cfg.control.socket)
    # systemd joins several RuntimeDirectory= entries with ':'; the first one is ours.
    runtime_dir = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime_dir:
        return Path(runtime_dir, SOCKET_NAME)
    return FALLBACK_DIR / SOCKET_NAME


# --- errors -------------------------------------------------------------------------------

def error_response(status: int, code: str, message: str) -> web.Response:
    body = {"success": False, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status)


class BadRequest(Exception):
    """Bad input from a client; becomes a 4xx answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@web.middleware
async def _errors(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """Every failure answers in the one error shape; no stack trace ever reaches a client."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(exc.status, exc.code, exc.message)
    except ControlError as exc:
        return error_response(exc.status, _STATUS_CODES.get(exc.status, "error"), exc.message)
    except web.HTTPException as exc:
        message = {404: f"no such route: {request.method} {request.path}",
                   405: f"method {request.method} not allowed on {request.path}"}
        return error_response(exc.status, _STATUS_CODES.get(exc.status, "error"),
                              message.get(exc.status, exc.reason))
    except Exception:
        log.exception("control_request_failed path=%s", request.path)
        return error_response(500, "internal", "internal error")


# --- request parsing ----------------------------------------------------------------------

async def _json_object(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(400, "bad_json", "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "bad_request", "body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise BadRequest(400, "bad_request", f"{unknown[0]}: unknown field")
    missing = sorted(fields - set(body))
    if missing:
        raise BadRequest(400, "bad_request", f"{missing[0]}: required")
    return body


def parse_count(body: Mapping[str, Any]) -> int:
    count = body["count"]
    if isinstance(count, bool) or not isinstance(count, int):
        raise BadRequest(400, "bad_request", "count: must be an integer")
    if count < 0:
        raise BadRequest(400, "bad_request", "count: must be >= 0")
    return count


def parse_name(body: Mapping[str, Any], view: SupervisorView, *, allow_all: bool) -> str:
    name = body["name"]
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(400, "bad_request", "name: must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(400, "bad_request", f"name: longer than {MAX_NAME_CHARS} characters")
    if allow_all and name == "all":
        return name
    known = [p["name"] for p in view.status().get("processes", [])]
    if name not in known:
        listed = ", ".join(known) or "none"
        raise BadRequest(404, "unknown_process", f"no process named {name!r} (known: {listed})")
    return name


# --- handlers -----------------------------------------------------------------------------

def _ok(result: Mapping[str, Any]) -> web.Response:
    return web.json_response({**result, "success": True})


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[_VIEW].status())


async def _dispatch(request: web.Request) -> web.Response:
    dispatch_id = request.match_info["dispatch_id"]
    timeline = request.app[_VIEW].dispatch_timeline(dispatch_id)
    if timeline is None:
        raise BadRequest(404, "unknown_dispatch", f"dispatch {dispatch_id} is not tracked "
                                                  "(unknown, reused, or expired)")
    return web.json_response(timeline)


async def _scale(request: web.Request) -> web.Response:
    count = parse_count(await _json_object(request, frozenset({"count"})))
    return _ok(await request.app[_VIEW].scale(count))


async def _restart(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    name = parse_name(await _json_object(request, frozenset({"name"})), view, allow_all=True)
    return _ok(await view.restart(name))


async def _drain(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    name = parse_name(await _json_object(request, frozenset({"name"})), view, allow_all=False)
    return _ok(await view.drain(name))


def make_app(view: SupervisorView) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[_VIEW] = view
    app.router.add_get("/status", _status)
    app.router.add_get("/dispatches/{dispatch_id}", _dispatch)
    app.router.add_post("/scale", _scale)
    app.router.add_post("/restart", _restart)
    app.router.add_post("/drain", _drain)
    return app


# --- the socket file ----------------------------------------------------------------------

async def _answers(path: Path) -> bool:
    """True when something accepts connections on the unix socket at ``path``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)),
                                           PROBE_TIMEOUT_S)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except PermissionError:
        raise ControlSocketError(f"control.socket: {path} belongs to another user "
                                 "(permission denied); choose another path") from None
    except TimeoutError:
        return True  # a full backlog is still a live listener
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _check_existing(path: Path) -> None:
    """Refuse a live socket or a non-socket file; a stale socket is left to be renamed over."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketError(f"control.socket: {path} exists and is not a socket; "
                                 "remove it or choose another path")
    if await _answers(path):
        raise ControlSocketError(f"control.socket: another voiceops supervisor is running "
                                 f"(it answers on {path})")
    log.info("control_socket_stale path=%s", path)


def _bind_private(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, mode 0600, replacing any stale file atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Short: unix socket paths are limited to ~107 bytes.
    tmp = path.with_name(f".tmp{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Linux creates the socket file with the socket inode's mode (minus umask), so it is
        # 0600 from its first moment even in a shared pre-existing directory; chmod for others.
        os.fchmod(sock.fileno(), 0o600)
        sock.bind(str(tmp))
        os.chmod(tmp, 0o600)
        sock.listen(128)
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    sock.setblocking(False)
    return sock


@dataclass
class ControlServer:
    """A running control API; :meth:`aclose` stops it and removes its socket file."""

    socket_path: Path
    _runner: web.AppRunner
    _inode: tuple[int, int]

    async def aclose(self) -> None:
        await self._runner.cleanup()
        # Remove the file only while it is still ours, never a successor's socket.
        with contextlib.suppress(FileNotFoundError):
            st = self.socket_path.lstat()
            if (st.st_dev, st.st_ino) == self._inode:
                self.socket_path.unlink()


async def start_control_server(view: SupervisorView, socket_path: str | os.PathLike[str]
                               ) -> ControlServer:
    """Serve the control API on ``socket_path``; raises :class:`ControlSocketError`."""
    path = Path(socket_path)
    await _check_existing(path)
    try:
        sock = _bind_private(path)
    except OSError as exc:
        raise ControlSocketError(f"control.socket: cannot listen on {path}: "
                                 f"{exc.strerror or exc}") from None
    st = path.lstat()
    runner = web.AppRunner(make_app(view), access_log=None)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    log.info("control_listening path=%s", path)
    return ControlServer(path, runner, (st.st_dev, st.st_ino))


# --- client -------------------------------------------------------------------------------

async def request(socket_path: str | os.PathLike[str], method: str, path: str,
                  body: Mapping[str, Any] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
                  ) -> tuple[int, dict[str, Any]]:
    """One control request; returns ``(http_status, json_body)``.

    Raises :class:`NotRunning` when no supervisor listens, :class:`ControlClientError` on a
    timeout or an answer that is not a JSON object.
    """
    where = os.path.abspath(socket_path)
    if not os.path.exists(where):
        raise NotRunning(where, "no control socket")
    connector = aiohttp.UnixConnector(path=where)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                    session.request(method, f"http://voiceops{path}", json=body) as resp):
            data = await resp.json(content_type=None)
            status = resp.status
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, PermissionError):
            raise ControlClientError(f"permission denied on the control socket {where} "
                                     "(run as the service user or root)") from None
        raise NotRunning(where, "nothing answers on the control socket") from None
    except TimeoutError:
        raise ControlClientError(f"no answer from {where} within {timeout_s:g} s") from None
    except (aiohttp.ClientError, json.JSONDecodeError) as exc:
        raise ControlClientError(f"bad answer from {where}: {exc}") from None
    if not isinstance(data, dict):
        raise ControlClientError(f"bad answer from {where}: not a JSON object")
    return status, data
