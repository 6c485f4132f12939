"""LiveKit server API calls with a timeout, one retry on a transport error, and errors mapped
to what a browser should see (503 unreachable, 504 timeout, 502 anything else upstream).

All calls go through the process's single :class:`.TwirpClient` (keep-alive connections),
signed through its :class:`voiceops.signing.SignedTokens` (one token per grant, reused).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from livekit import api
from livekit.protocol import agent_dispatch, models

from voiceops.signing import SignedTokens

from .errors import LIVEKIT_ERROR, TIMEOUT, ApiError
from .twirp import TwirpClient
from .twirp_http import UpstreamGone

logger = logging.getLogger("voiceops.proxy.livekit")
T = TypeVar("T")
RETRY_BACKOFF_S = 0.2
_MAX_UPSTREAM_MESSAGE = 200
ROOMS = "RoomService"
DISPATCHES = "AgentDispatchService"
_ROOM_LIST = api.VideoGrants(room_list=True)


class LiveKitGateway:
    def __init__(self, twirp: TwirpClient, tokens: SignedTokens, http_url: str,
                 timeout_s: float) -> None:
        self._twirp = twirp
        self._tokens = tokens
        self.http_url = http_url
        self.timeout_s = timeout_s

    def _admin(self, room: str) -> str:
        """The header livekit-api sends for a one-room call (room_admin on that room)."""
        return self._tokens.auth_header(api.VideoGrants(room_admin=True, room=room))[
            "authorization"]

    async def list_rooms(self, names: list[str], *, timeout_s: float | None = None,
                         retry: bool = True) -> list[models.Room]:
        req = api.ListRoomsRequest(names=names)
        auth = self._tokens.auth_header(_ROOM_LIST)["authorization"]
        resp = await self.call("ListRooms", lambda: self._twirp.call(
            ROOMS, "ListRooms", req, api.ListRoomsResponse, auth), timeout_s=timeout_s,
            retry=retry)
        return list(resp.rooms)

    async def list_dispatch(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        req = api.ListAgentDispatchRequest(room=room)
        resp = await self.call("ListDispatch", lambda: self._twirp.call(
            DISPATCHES, "ListDispatch", req, api.ListAgentDispatchResponse, self._admin(room)))
        return list(resp.agent_dispatches)

    async def list_participants(self, room: str) -> list[models.ParticipantInfo]:
        req = api.ListParticipantsRequest(room=room)
        resp = await self.call("ListParticipants", lambda: self._twirp.call(
            ROOMS, "ListParticipants", req, api.ListParticipantsResponse, self._admin(room)))
        return list(resp.participants)

    async def delete_dispatch(self, dispatch_id: str, room: str) -> None:
        req = api.DeleteAgentDispatchRequest(dispatch_id=dispatch_id, room=room)
        await self.call("DeleteDispatch", lambda: self._twirp.call(
            DISPATCHES, "DeleteDispatch", req, agent_dispatch.AgentDispatch, self._admin(room)))

    async def create_dispatch(self, agent_name: str, room: str,
                              metadata: str) -> agent_dispatch.AgentDispatch:
        """Not retried here: a lost answer may still have created the dispatch (the caller
        re-checks for an existing dispatch before trying again)."""
        req = api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
        return await self.call("CreateDispatch", lambda: self._twirp.call(
            DISPATCHES, "CreateDispatch", req, agent_dispatch.AgentDispatch, self._admin(room)),
            retry=False)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]], *,
                   timeout_s: float | None = None, retry: bool = True) -> T:
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        attempts = 2 if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(limit_s):
                    return await fn()
            except TimeoutError:
                raise self.timeout_error(what, limit_s) from None
            except UpstreamGone as exc:
                if attempt == attempts:
                    raise self.unreachable(exc) from None
                logger.warning("livekit_retry call=%s error=%s", what, type(exc).__name__)
                await asyncio.sleep(RETRY_BACKOFF_S)
            except api.TwirpError as exc:
                raise map_server_error(exc, self.http_url) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def timeout_error(self, what: str, limit_s: float) -> ApiError:
        return ApiError(504, "livekit_timeout",
                        f"LiveKit at {self.http_url} did not answer {what} within {limit_s:g} s",
                        reason=TIMEOUT)

    def unreachable(self, exc: BaseException) -> ApiError:
        return ApiError(503, "livekit_unreachable",
                        f"LiveKit unreachable at {self.http_url} ({type(exc).__name__})",
                        reason=LIVEKIT_ERROR)


def map_server_error(exc: api.TwirpError, http_url: str) -> ApiError:
    """A Twirp error answer from LiveKit, as the status and words a browser should get."""
    detail = f"{exc.status} {exc.code}"
    if exc.message:
        detail += f": {exc.message[:_MAX_UPSTREAM_MESSAGE]}"
    if exc.status == 503 or exc.code == api.TwirpErrorCode.UNAVAILABLE:
        return ApiError(503, "livekit_unavailable",
                        f"LiveKit unavailable at {http_url} ({detail})", reason=LIVEKIT_ERROR)
    if exc.status == 504 or exc.code == api.TwirpErrorCode.DEADLINE_EXCEEDED:
        return ApiError(504, "livekit_timeout", f"LiveKit at {http_url} timed out ({detail})",
                        reason=TIMEOUT)
    if exc.status in (401, 403) or exc.code in (api.TwirpErrorCode.UNAUTHENTICATED,
                                                 api.TwirpErrorCode.PERMISSION_DENIED):
        return ApiError(502, "livekit_auth",
                        f"LiveKit at {http_url} rejected the proxy's credentials ({detail}); "
                        "check livekit.api_key and the LiveKit API secret", reason=LIVEKIT_ERROR)
    return ApiError(502, "livekit_error", f"LiveKit at {http_url} answered an error ({detail})",
                    reason=LIVEKIT_ERROR)
