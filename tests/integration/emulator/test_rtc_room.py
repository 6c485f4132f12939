"""The real `livekit.rtc.Room` (Rust FFI + libwebrtc, in a child process) against /rtc."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psutil
import pytest
from livekit.protocol import models

try:
    from .rtc_client import RtcClient
    from .rtc_fakehub import FakeHub, mint_token, serve
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_client import RtcClient
    from rtc_fakehub import FakeHub, mint_token, serve

from voiceops.emulator.rtc import SESSIONS_KEY
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process]

CONNECT_DEADLINE_S = 30.0  # a healthy connect takes ~0.3 s; the machine is shared and slow
EVENT_DEADLINE_S = 15.0


@contextlib.asynccontextmanager
async def _clients(count: int) -> AsyncIterator[list[RtcClient]]:
    """`count` client processes, closed (or killed) afterwards, leaving no child behind."""
    clients: list[RtcClient] = []
    try:
        for _ in range(count):
            clients.append(await RtcClient.start())
        yield clients
    finally:
        for client in clients:
            await client.close()
        assert psutil.Process().children(recursive=True) == []


async def _connect(client: RtcClient, url: str, room: str, identity: str) -> dict:
    await client.send("connect", url, mint_token(room, identity))
    return await client.expect("connected", "failed", timeout_s=CONNECT_DEADLINE_S)


def _rtc_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("rtc-")]


async def test_connect_marks_active_and_disconnect_leaves() -> None:
    """Room.connect succeeds over real WebRTC, the hub sees set_active, and disconnect leaves
    cleanly."""
    hub = FakeHub()
    async with serve(hub) as (url, app), _clients(1) as (client,):
        connected = await _connect(client, url, "r1", "alice")
        assert connected.pop("elapsed_s") > 0
        assert connected == {"event": "connected", "sid": "PA_alice", "room": "r1", "remote": []}
        await hub.wait_for(lambda: hub.saw("active", "r1", "alice"), EVENT_DEADLINE_S)
        (session,) = app[SESSIONS_KEY]
        assert session.publisher.connection_state == "connected"
        await client.send("disconnect")
        await client.expect("disconnected", timeout_s=EVENT_DEADLINE_S)
        await hub.wait_for(lambda: hub.saw("leave", "r1", "alice"), EVENT_DEADLINE_S)
        await wait_for_async(lambda: not app[SESSIONS_KEY], EVENT_DEADLINE_S,
                             "the sessions to end")
        assert session.publisher.connection_state == "closed"
        assert _rtc_tasks() == []
        assert hub.events == [
            ("join", "r1", "alice"),
            ("active", "r1", "alice"),
            ("leave", "r1", "alice"),
        ]


async def test_second_participant_sees_first_and_first_gets_update() -> None:
    """The second joiner gets the first in other_participants; the first learns of the second via
    updates."""
    hub = FakeHub()
    async with serve(hub) as (url, _app), _clients(2) as (alice, bob):
        assert (await _connect(alice, url, "r2", "alice"))["event"] == "connected"
        joined = await _connect(bob, url, "r2", "bob")
        assert (joined["event"], joined["remote"]) == ("connected", ["alice"])
        seen = await alice.expect("participant_connected", timeout_s=EVENT_DEADLINE_S)
        assert seen["identity"] == "bob"
        await bob.send("disconnect")
        gone = await alice.expect("participant_disconnected", timeout_s=EVENT_DEADLINE_S)
        assert gone["identity"] == "bob"
    await hub.wait_for(lambda: hub.saw("leave", "r2", "alice"), EVENT_DEADLINE_S)


async def test_publish_audio_track_gets_track_published() -> None:
    """Publishing a microphone track completes (add_track -> track_published plus renegotiation)."""
    hub = FakeHub()
    async with serve(hub) as (url, app), _clients(1) as (client,):
        assert (await _connect(client, url, "r3", "speaker"))["event"] == "connected"
        await client.send("publish")
        published = await client.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
        assert published["event"] == "published" and published["sid"].startswith("TR_")
        (session,) = app[SESSIONS_KEY]
        assert session.publisher.connection_state == "connected"
        await client.send("disconnect")
        await hub.wait_for(lambda: hub.saw("leave", "r3", "speaker"), EVENT_DEADLINE_S)


async def test_room_deleted_by_hub_disconnects_client() -> None:
    """A server-side close through the sink sends leave: the client disconnects and no leave()
    comes back."""
    hub = FakeHub()
    async with serve(hub) as (url, app), _clients(1) as (client,):
        assert (await _connect(client, url, "r4", "alice"))["event"] == "connected"
        await hub.wait_for(lambda: hub.saw("active", "r4", "alice"), EVENT_DEADLINE_S)
        await hub.delete_room("r4")
        event = await client.expect("room_disconnected", timeout_s=EVENT_DEADLINE_S)
        assert event["reason"] == models.DisconnectReason.ROOM_DELETED
        await wait_for_async(lambda: not app[SESSIONS_KEY], EVENT_DEADLINE_S,
                             "the sessions to end")
    assert not hub.saw("leave", "r4", "alice")


@pytest.mark.faults
async def test_refuse_media_connect_does_not_complete() -> None:
    """With refuse_media the signal join happens but the connect never completes (no answer, no
    ACTIVE)."""
    hub = FakeHub(refuse=True)
    async with serve(hub) as (url, app), _clients(1) as (client,):
        await client.send("connect", url, mint_token("r5", "blocked"))
        await hub.wait_for(lambda: hub.saw("join", "r5", "blocked"), EVENT_DEADLINE_S)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.expect("connected", "failed", timeout_s=8.0)
        assert time.monotonic() - started >= 7.5
        assert not hub.saw("active", "r5", "blocked")
        await client.kill()  # the FFI would retry for ~60 s; only the process end stops it
        await hub.wait_for(lambda: hub.saw("leave", "r5", "blocked"), EVENT_DEADLINE_S)
        await wait_for_async(lambda: not app[SESSIONS_KEY], EVENT_DEADLINE_S,
                             "the sessions to end")
