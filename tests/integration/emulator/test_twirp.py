"""RoomService and AgentDispatchService through the real livekit-api client."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from livekit import api

pytestmark = [pytest.mark.livekit, pytest.mark.process]


def _token(server: Any, grants: api.VideoGrants | None, secret: str | None = None) -> str:
    tok = api.AccessToken(server.api_key, secret or server.api_secret)
    if grants is not None:
        tok = tok.with_grants(grants)
    return tok.to_jwt()


async def test_room_service_round_trip(lkapi: api.LiveKitAPI, livekit_server: Any) -> None:
    """CreateRoom, ListRooms (all, by name), ListParticipants and DeleteRoom work as in Go."""
    room = await lkapi.room.create_room(api.CreateRoomRequest(name="twirp-r1", metadata="m1"))
    assert room.name == "twirp-r1" and room.sid.startswith("RM_") and room.metadata == "m1"
    again = await lkapi.room.create_room(api.CreateRoomRequest(name="twirp-r1"))
    assert again.sid == room.sid  # CreateRoom on an existing room returns it
    await lkapi.room.create_room(api.CreateRoomRequest(name="twirp-r2"))
    names = {r.name for r in (await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms}
    assert {"twirp-r1", "twirp-r2"} <= names
    only = (await lkapi.room.list_rooms(api.ListRoomsRequest(names=["twirp-r2"]))).rooms
    assert [r.name for r in only] == ["twirp-r2"]
    parts = await lkapi.room.list_participants(api.ListParticipantsRequest(room="twirp-r1"))
    assert list(parts.participants) == []
    await lkapi.room.delete_room(api.DeleteRoomRequest(room="twirp-r1"))
    names = {r.name for r in (await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms}
    assert "twirp-r1" not in names
    with pytest.raises(api.TwirpError) as err:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room="twirp-r1"))
    assert (err.value.code, err.value.status) == ("not_found", 404)


async def test_dispatch_service_round_trip(lkapi: api.LiveKitAPI) -> None:
    """CreateDispatch auto-creates the room (with the unnamed dispatch); Get/List/Delete work."""
    created = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="nobody-home", room="twirp-d1", metadata="md")
    )
    assert created.id.startswith("AD_") and created.agent_name == "nobody-home"
    assert list(created.state.jobs) == []
    rooms = (await lkapi.room.list_rooms(api.ListRoomsRequest(names=["twirp-d1"]))).rooms
    assert [r.name for r in rooms] == ["twirp-d1"]
    listed = await lkapi.agent_dispatch.list_dispatch("twirp-d1")
    assert sorted(d.agent_name for d in listed) == ["", "nobody-home"]
    got = await lkapi.agent_dispatch.get_dispatch(created.id, "twirp-d1")
    assert got is not None and got.metadata == "md"
    deleted = await lkapi.agent_dispatch.delete_dispatch(created.id, "twirp-d1")
    assert deleted.id == created.id and deleted.state.deleted_at > 0
    assert await lkapi.agent_dispatch.get_dispatch(created.id, "twirp-d1") is None
    with pytest.raises(api.TwirpError) as err:
        await lkapi.agent_dispatch.delete_dispatch(created.id, "twirp-d1")
    assert err.value.status == 404


@pytest.mark.parametrize(
    ("grants", "call"),
    [
        (None, "create_room"),
        (api.VideoGrants(room_list=True), "create_room"),
        (api.VideoGrants(room_create=True), "list_rooms"),
        (api.VideoGrants(room_list=True), "delete_room"),
        (api.VideoGrants(room_admin=True, room="other"), "list_participants"),
        (api.VideoGrants(room_admin=True, room="other"), "create_dispatch"),
        (api.VideoGrants(room_create=True, room_list=True), "list_dispatch"),
        (api.VideoGrants(room_admin=False, room="g1"), "delete_dispatch"),
    ],
)
async def test_missing_grants_are_unauthenticated(
    livekit_server: Any, grants: api.VideoGrants | None, call: str
) -> None:
    """A verified token without the grant the method needs gets Twirp unauthenticated (401)."""
    async with api.LiveKitAPI(livekit_server.http_url, token=_token(livekit_server, grants)) as lk:
        calls = {
            "create_room": lambda: lk.room.create_room(api.CreateRoomRequest(name="g1")),
            "list_rooms": lambda: lk.room.list_rooms(api.ListRoomsRequest()),
            "delete_room": lambda: lk.room.delete_room(api.DeleteRoomRequest(room="g1")),
            "list_participants": lambda: lk.room.list_participants(
                api.ListParticipantsRequest(room="g1")
            ),
            "create_dispatch": lambda: lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="a", room="g1")
            ),
            "list_dispatch": lambda: lk.agent_dispatch.list_dispatch("g1"),
            "delete_dispatch": lambda: lk.agent_dispatch.delete_dispatch("AD_x", "g1"),
        }
        with pytest.raises(api.TwirpError) as err:
            await calls[call]()
    assert (err.value.code, err.value.status) == ("unauthenticated", 401)


async def test_unverifiable_token_is_plain_401(livekit_server: Any) -> None:
    """A token with the wrong secret is refused before Twirp: 401 plain text, code unknown."""
    bad = _token(livekit_server, api.VideoGrants(room_list=True), secret="not-the-secret-at-all")
    async with api.LiveKitAPI(livekit_server.http_url, token=bad) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.list_rooms(api.ListRoomsRequest())
    assert (err.value.code, err.value.status) == ("unknown", 401)
    async with aiohttp.ClientSession() as http, http.post(
        f"{livekit_server.http_url}/twirp/livekit.RoomService/ListRooms",
        headers={"Authorization": "Bearer not.a.jwt", "Content-Type": "application/protobuf"},
        data=b"",
    ) as resp:
        assert resp.status == 401
        assert "not.a.jwt" not in await resp.text()  # the token is never echoed


async def test_json_twirp(livekit_server: Any) -> None:
    """Twirp with Content-Type application/json answers protojson; a bad body is malformed (400)."""
    token = _token(livekit_server, api.VideoGrants(room_create=True))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{livekit_server.http_url}/twirp/livekit.RoomService/CreateRoom"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, headers=headers, data='{"name": "json-room"}') as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            body = await resp.json()
        assert body["name"] == "json-room" and body["sid"].startswith("RM_")
        async with http.post(url, headers=headers, data="{not json") as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == "malformed"


async def test_list_dispatch_of_missing_room_is_unavailable(lkapi: api.LiveKitAPI) -> None:
    """ListDispatch for a missing room fails with 503 unavailable, as on the Go server."""
    started = time.monotonic()
    with pytest.raises(api.TwirpError) as err:
        await lkapi.agent_dispatch.list_dispatch("no-such-room")
    assert err.value.status == 503 and err.value.code == "unavailable"
    assert time.monotonic() - started < 10


@pytest.mark.faults
async def test_twirp_error_fault(livekit_server: Any, lkapi: api.LiveKitAPI) -> None:
    """twirp_error=503 makes every call fail with status 503 until the faults are cleared."""
    livekit_server.faults.set(twirp_error=503)
    with pytest.raises(api.TwirpError) as err:
        await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert (err.value.status, err.value.code) == (503, "unavailable")
    livekit_server.faults.clear()
    await lkapi.room.list_rooms(api.ListRoomsRequest())


@pytest.mark.faults
async def test_twirp_delay_fault(livekit_server: Any, lkapi: api.LiveKitAPI) -> None:
    """twirp_delay_s delays every Twirp answer by at least that long."""
    livekit_server.faults.set(twirp_delay_s=1.5)
    started = time.monotonic()
    await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert time.monotonic() - started >= 1.5
    livekit_server.faults.clear()
    started = time.monotonic()
    await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert time.monotonic() - started < 1.5


async def test_session_server_answers(livekit_server_module: Any) -> None:
    """The session-scoped server fixture serves the same Twirp API as the per-test one."""
    async with api.LiveKitAPI(
        livekit_server_module.http_url,
        livekit_server_module.api_key,
        livekit_server_module.api_secret,
    ) as lk:
        room = await lk.room.create_room(api.CreateRoomRequest(name="session-room"))
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest(names=["session-room"]))).rooms
    assert [r.sid for r in rooms] == [room.sid]


async def test_twirp_errors_are_exactly_application_json(livekit_server: Any) -> None:
    """Error bodies are {"code","msg"} with Content-Type exactly application/json (no charset)."""
    token = _token(livekit_server, api.VideoGrants(room_create=True))
    url = f"{livekit_server.http_url}/twirp/livekit.RoomService/DeleteRoom"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, headers=headers, data='{"room": "never-created"}') as resp,
    ):
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        body = await resp.json()
    assert body["code"] == "not_found" and body["msg"]


@pytest.mark.parametrize(
    ("method", "path", "route_in_msg"),
    [
        ("GET", "/twirp/livekit.RoomService/ListRooms", "unsupported method"),
        ("GET", "/twirp/livekit.AgentDispatchService/ListDispatch", "unsupported method"),
        ("POST", "/twirp/livekit.RoomService/NoSuchMethod", "no handler for path"),
    ],
)
async def test_bad_twirp_route_is_404_bad_route(
    livekit_server: Any, method: str, path: str, route_in_msg: str
) -> None:
    """A GET, or an unknown method of a served service, is 404 bad_route naming the route."""
    token = _token(livekit_server, api.VideoGrants(room_list=True))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/protobuf"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, livekit_server.http_url + path, headers=headers) as resp,
    ):
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        body = await resp.json()
    assert body["code"] == "bad_route" and route_in_msg in body["msg"]
    assert body["meta"] == {"twirp_invalid_route": f"{method} {path}"}


async def test_state_narrowed_to_rooms(lkapi: api.LiveKitAPI, livekit_server: Any) -> None:
    """/emulator/state?room=A&room=B lists those rooms and their dispatches only; without
    ?room it lists every room (benchmarks poll only their own rooms, on the server's loop)."""
    for name in ("state-a", "state-b", "state-c"):
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="nobody-home", room=name))
    narrowed = livekit_server.state(["state-a", "state-c", "state-missing"])
    assert sorted(r["name"] for r in narrowed["rooms"]) == ["state-a", "state-c"]
    assert {d["room"] for d in narrowed["dispatches"]} == {"state-a", "state-c"}
    everything = livekit_server.state()
    assert {"state-a", "state-b", "state-c"} <= {r["name"] for r in everything["rooms"]}
