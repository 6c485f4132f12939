"""/rtc served by the whole emulator (its real room core), driven by the real `rtc.Room` in a child.

Runs unchanged against a real `livekit-server --dev` when LIVEKIT_URL is set (faults are skipped).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import psutil
import pytest
from emulator_helpers import participants_by_identity, until_participants
from livekit.protocol import models

try:
    from .rtc_client import RtcClient
    from .rtc_fakehub import mint_token
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_client import RtcClient
    from rtc_fakehub import mint_token

pytestmark = [pytest.mark.livekit, pytest.mark.process]

CONNECT_DEADLINE_S = 30.0
EVENT_DEADLINE_S = 15.0


@pytest.fixture
async def client(livekit_server) -> AsyncIterator[RtcClient]:
    """One client process; afterwards no child but the emulator (stopped by its own fixture) is
    left."""
    proc = await RtcClient.start()
    yield proc
    await proc.close()
    emulator = {livekit_server.pid} if livekit_server.pid else set()
    others = [c for c in psutil.Process().children(recursive=True)
              if c.pid not in emulator and not emulator & {p.pid for p in c.parents()}]
    assert others == []


async def _participants(server, room: str) -> dict[str, models.ParticipantInfo]:
    return await participants_by_identity(server, room)


async def _until_participants(server, room: str, predicate) -> dict[str, models.ParticipantInfo]:
    return await until_participants(server, room, predicate, EVENT_DEADLINE_S)


async def test_room_connect_is_active_then_leaves(livekit_server, client: RtcClient) -> None:
    """A client connects through the emulator's /rtc, is listed ACTIVE, and is gone after
    disconnect."""
    room = f"rtc-emu-{time.monotonic_ns()}"
    token = mint_token(room, "alice", key=livekit_server.api_key, secret=livekit_server.api_secret)
    await client.send("connect", livekit_server.url, token)
    connected = await client.expect("connected", "failed", timeout_s=CONNECT_DEADLINE_S)
    assert (connected["event"], connected["room"]) == ("connected", room)
    found = await _until_participants(
        livekit_server, room,
        lambda ps: "alice" in ps and ps["alice"].state == models.ParticipantInfo.ACTIVE)
    assert found["alice"].sid == connected["sid"]
    await client.send("publish")
    published = await client.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
    assert published["event"] == "published"
    await client.send("disconnect")
    await client.expect("disconnected", timeout_s=EVENT_DEADLINE_S)
    await _until_participants(livekit_server, room, lambda ps: "alice" not in ps)


@pytest.mark.faults
async def test_refuse_media_fault_blocks_connect(livekit_server, client: RtcClient) -> None:
    """With the emulator's refuse_media fault the client is listed JOINING but never connects."""
    livekit_server.faults.set(refuse_media=True)
    room = f"rtc-emu-refused-{time.monotonic_ns()}"
    token = mint_token(room, "bob", key=livekit_server.api_key, secret=livekit_server.api_secret)
    await client.send("connect", livekit_server.url, token)
    await _until_participants(livekit_server, room, lambda ps: "bob" in ps)
    with pytest.raises(TimeoutError):
        await client.expect("connected", "failed", timeout_s=8.0)
    found = await _participants(livekit_server, room)
    assert found["bob"].state != models.ParticipantInfo.ACTIVE
    await client.kill()
