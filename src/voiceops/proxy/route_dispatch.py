"""POST /api/dispatch-agent: one dispatch of our agent to a room (reused if it exists)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from aiohttp import web

from voiceops import events

from .bodies import read_json
from .context import CTX
from .dispatcher import DispatchResult
from .middleware import ROOM_KEY, T0_KEY
from .options import ProxyOptions
from .services import SERVICES
from .validation import (
    LETTA_AGENT_KEY,
    RESERVED_ROOM_PREFIXES,
    check_metadata,
    check_name,
    check_not_reserved,
)

logger = logging.getLogger("voiceops.proxy.dispatch")
FIELDS = ("room", "agent_id", "metadata")


async def dispatch_agent(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    data = await read_json(request, FIELDS)
    room, metadata = checked_request(ctx.options, data, request)
    result = await request.app[SERVICES].dispatcher.dispatch(room, metadata)
    latency_s = max(0.0, ctx.clock() - request[T0_KEY])
    # The event and the log line go out in the loop's next turn, after aiohttp has written
    # this answer: a datagram and a log write are ~10 % of the proxy's time per dispatch, and
    # nothing in them changes the answer (bench/README.md).
    asyncio.get_running_loop().call_soon(announce, result, latency_s)
    return web.json_response(answer(result))


def checked_request(opts: ProxyOptions, data: dict[str, Any],
                    noted: MutableMapping[Any, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(room, job metadata) of a dispatch body, or the :class:`ApiError` that answers it; the
    room is noted in ``noted`` (the request) as soon as it is known, for a failure event."""
    room = check_name("room", data.get("room"))
    if noted is not None:
        noted[ROOM_KEY] = room
    check_not_reserved("room", room, RESERVED_ROOM_PREFIXES)  # probe rooms are the heartbeat's
    agent_id = check_name("agent_id", data.get("agent_id"), required=False)
    metadata = check_metadata(data.get("metadata"), opts.max_metadata_bytes)
    letta_agent_id = agent_id or opts.default_letta_agent_id
    if letta_agent_id:
        metadata[LETTA_AGENT_KEY] = letta_agent_id
    return room, metadata


def answer(result: DispatchResult) -> dict[str, Any]:
    return {"success": True, "room": result.room, "dispatch_id": result.dispatch_id,
            "agent_name": result.agent_name, "room_existed": result.room_existed,
            "reused": result.reused, "message": result.message}


def announce(result: DispatchResult, latency_s: float) -> None:
    """The ``dispatch_created`` event and log line of one answered dispatch."""
    events.emit(events.DispatchCreated(dispatch_id=result.dispatch_id, room=result.room,
                                       agent_name=result.agent_name, latency_s=latency_s,
                                       reused=result.reused))
    # No room name in the log: it is the caller's data (the event carries it to the supervisor).
    logger.info("dispatch_created dispatch_id=%s agent_name=%s reused=%s room_existed=%s "
                "latency_s=%s", result.dispatch_id, result.agent_name, result.reused,
                result.room_existed, round(latency_s, 4))
