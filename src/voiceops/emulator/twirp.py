"""POST /twirp/livekit.<Service>/<Method>: RoomService and AgentDispatchService over Twirp."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from google.protobuf.json_format import MessageToJson, Parse, ParseError
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.api.access_token import Claims
from livekit.protocol import agent_dispatch
from livekit.protocol import room as room_pb

from .faults import FaultController
from .rooms import RoomManager, RoomSpec, TwirpFailure
from .tokens import AuthError, request_token, verify_token

logger = logging.getLogger("voiceops.emulator.twirp")

# Twirp's code -> HTTP status table (twitchtv/twirp errors.go).
TWIRP_STATUS: dict[str, int] = {
    "canceled": 408,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
    "unknown": 500,
}
_CODE_FOR_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "already_exists",
    429: "resource_exhausted",
    501: "unimplemented",
    503: "unavailable",
    504: "deadline_exceeded",
}


def twirp_error(
    code: str, msg: str, meta: dict[str, str] | None = None, status: int | None = None
) -> web.Response:
    """Twirp's writeError: a JSON body {"code","msg"[,"meta"]} and Content-Type exactly
    application/json (the Node server SDK parses the code only then; no charset)."""
    body: dict[str, object] = {"code": code, "msg": msg}
    if meta:
        body["meta"] = meta
    return web.Response(
        body=json.dumps(body).encode(),
        status=status or TWIRP_STATUS.get(code, 500),
        headers={"Content-Type": "application/json"},
    )


def bad_route(msg: str, request: web.Request) -> web.Response:
    """Twirp's badRouteError: 404 bad_route, the route in meta.twirp_invalid_route."""
    return twirp_error(
        "bad_route", msg, {"twirp_invalid_route": f"{request.method} {request.path}"}
    )


def code_for_status(status: int) -> str:
    return _CODE_FOR_STATUS.get(status, "internal" if status >= 500 else "invalid_argument")


# -- grants (pkg/service/auth.go) ---------------------------------------------------------------
def _denied() -> TwirpFailure:
    return TwirpFailure("unauthenticated", "permissions denied")


def require_admin(claims: Claims | None, room: str) -> None:
    video = claims.video if claims else None
    if video is None or not video.room_admin or video.room != room:
        raise _denied()


def require_create(claims: Claims | None) -> None:
    if claims is None or claims.video is None or not claims.video.room_create:
        raise _denied()


def require_list(claims: Claims | None) -> None:
    if claims is None or claims.video is None or not claims.video.room_list:
        raise _denied()


Handler = Callable[[RoomManager, "Claims | None", Message], Awaitable[Message]]


@dataclass(frozen=True)
class Method:
    request_type: type[Message]
    handler: Handler


async def _create_room(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, room_pb.CreateRoomRequest)
    require_create(claims)
    if not req.name:
        raise TwirpFailure("invalid_argument", "room name is required")
    spec = RoomSpec(
        name=req.name,
        empty_timeout_s=req.empty_timeout,
        departure_timeout_s=req.departure_timeout,
        max_participants=req.max_participants,
        metadata=req.metadata,
        agents=tuple(req.agents),
    )
    room, _ = rooms.get_or_create(spec)
    return room.to_proto()


async def _list_rooms(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, room_pb.ListRoomsRequest)
    require_list(claims)
    return room_pb.ListRoomsResponse(rooms=rooms.list_rooms(req.names))


async def _delete_room(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, room_pb.DeleteRoomRequest)
    require_create(claims)
    await rooms.delete_room(req.room)
    return room_pb.DeleteRoomResponse()


async def _list_participants(
    rooms: RoomManager, claims: Claims | None, req: Message
) -> Message:
    assert isinstance(req, room_pb.ListParticipantsRequest)
    require_admin(claims, req.room)
    return room_pb.ListParticipantsResponse(participants=rooms.list_participants(req.room))


async def _create_dispatch(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, agent_dispatch.CreateAgentDispatchRequest)
    require_admin(claims, req.room)
    return rooms.create_dispatch(req)


async def _list_dispatch(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, agent_dispatch.ListAgentDispatchRequest)
    require_admin(claims, req.room)
    found = rooms.list_dispatch(req.room, req.dispatch_id)
    return agent_dispatch.ListAgentDispatchResponse(agent_dispatches=found)


async def _delete_dispatch(rooms: RoomManager, claims: Claims | None, req: Message) -> Message:
    assert isinstance(req, agent_dispatch.DeleteAgentDispatchRequest)
    require_admin(claims, req.room)
    return await rooms.delete_dispatch(req.room, req.dispatch_id)


METHODS: dict[str, Method] = {
    "livekit.RoomService/CreateRoom": Method(room_pb.CreateRoomRequest, _create_room),
    "livekit.RoomService/ListRooms": Method(room_pb.ListRoomsRequest, _list_rooms),
    "livekit.RoomService/DeleteRoom": Method(room_pb.DeleteRoomRequest, _delete_room),
    "livekit.RoomService/ListParticipants": Method(
        room_pb.ListParticipantsRequest, _list_participants
    ),
    "livekit.AgentDispatchService/CreateDispatch": Method(
        agent_dispatch.CreateAgentDispatchRequest, _create_dispatch
    ),
    "livekit.AgentDispatchService/ListDispatch": Method(
        agent_dispatch.ListAgentDispatchRequest, _list_dispatch
    ),
    "livekit.AgentDispatchService/DeleteDispatch": Method(
        agent_dispatch.DeleteAgentDispatchRequest, _delete_dispatch
    ),
}
_PROTOBUF_TYPES = ("application/protobuf", "application/x-protobuf")
_ROUTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_SERVICES = frozenset(path.split("/", 1)[0] for path in METHODS)


class TwirpServer:
    def __init__(
        self, rooms: RoomManager, verifier: api.TokenVerifier, faults: FaultController
    ) -> None:
        self._rooms = rooms
        self._verifier = verifier
        self._faults = faults
        # Requests per "Service/Method", counted on arrival (before any fault): how many
        # round trips a client made, for benchmarks and tests (GET /emulator/state).
        self.calls: Counter[str] = Counter()

    def add_routes(self, app: web.Application) -> None:
        # Every method but OPTIONS, which stays with the CORS preflight handling.
        for verb in _ROUTED_METHODS:
            app.router.add_route(verb, "/twirp/{service}/{method}", self.handle)
            app.router.add_route(verb, "/twirp/{tail:.*}", self.no_route)

    async def no_route(self, request: web.Request) -> web.Response:
        """A path no Twirp service owns: Go's mux answers http.NotFound (plain text)."""
        service = request.match_info["tail"].split("/", 1)[0]
        if service in _SERVICES:
            return bad_route(f"no handler for path {request.path!r}", request)
        return web.Response(status=404, text="404 page not found")

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["service"] not in _SERVICES:
            return web.Response(status=404, text="404 page not found")
        self.calls[f"{request.match_info['service']}/{request.match_info['method']}"] += 1
        faults = self._faults.current
        if faults.twirp_delay_s > 0:
            await asyncio.sleep(faults.twirp_delay_s)
        if faults.twirp_error is not None:
            status = faults.twirp_error
            return twirp_error(code_for_status(status), "injected fault", status=status)
        try:
            token = request_token(request)
            claims = verify_token(self._verifier, token) if token else None
        except AuthError as exc:
            return web.Response(status=401, text=str(exc))
        if request.method != "POST":
            msg = f"unsupported method {request.method!r} (only POST is allowed)"
            return bad_route(msg, request)
        path = f"{request.match_info['service']}/{request.match_info['method']}"
        method = METHODS.get(path)
        if method is None:
            return bad_route(f"no handler for path {request.path!r}", request)
        return await self._call(request, method, path, claims)

    async def _call(
        self, request: web.Request, method: Method, path: str, claims: Claims | None
    ) -> web.Response:
        content_type = request.content_type
        as_json = content_type == "application/json"
        if not as_json and content_type not in _PROTOBUF_TYPES:
            return bad_route(f"unexpected Content-Type: {content_type!r}", request)
        body = await request.read()
        req = method.request_type()
        try:
            if as_json:
                Parse(body.decode() or "{}", req, ignore_unknown_fields=True)
            else:
                req.ParseFromString(body)
        except (DecodeError, ParseError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return twirp_error("malformed", f"the request could not be decoded: {exc}")
        try:
            resp = await method.handler(self._rooms, claims, req)
        except TwirpFailure as exc:
            return twirp_error(exc.code, exc.msg)
        except Exception:  # a bug in the emulator must still look like a Twirp error to clients
            logger.exception("twirp_failed path=%s", path)
            return twirp_error("internal", "internal error")
        logger.debug("twirp_ok path=%s", path)
        if as_json:
            text = MessageToJson(
                resp, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            return web.Response(body=text.encode(), headers={"Content-Type": "application/json"})
        return web.Response(body=resp.SerializeToString(), content_type="application/protobuf")
