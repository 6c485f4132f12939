"""Webhooks and room lifecycle, with an in-process Emulator and a local receiver."""

from __future__ import annotations

import pytest
from emulator_helpers import WebhookSink
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from voiceops.emulator import Emulator, EmulatorOptions
from voiceops.testing.waiting import wait_for_async


class _Sink:
    def __init__(self) -> None:
        self.sent: list[rtc_pb.SignalResponse] = []
        self.closed: list[str] = []

    async def send(self, msg: rtc_pb.SignalResponse) -> None:
        self.sent.append(msg)

    async def close(self, reason: str) -> None:
        self.closed.append(reason)


def _join_claims(
    emu: Emulator, room: str, identity: str, agents: list[str] = (), kind: str = ""
) -> api.Claims:
    tok = api.AccessToken(emu.options.api_key, emu.options.api_secret).with_identity(identity)
    tok = tok.with_grants(api.VideoGrants(room_join=True, room=room))
    if kind:
        tok = tok.with_kind(kind)
    if agents:
        tok = tok.with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=a) for a in agents])
        )
    return emu.core.hub.verify_join_token(tok.to_jwt())


async def test_room_webhooks_are_signed(webhook_sink: WebhookSink) -> None:
    """room_started/room_finished arrive signed (no Bearer) as application/webhook+json."""
    options = EmulatorOptions(port=0, webhook_urls=(webhook_sink.url,))
    async with Emulator(options) as emu, api.LiveKitAPI(emu.http_url, "devkey", "secret") as lk:
        await lk.room.create_room(api.CreateRoomRequest(name="wh-room"))
        await lk.room.delete_room(api.DeleteRoomRequest(room="wh-room"))
        await wait_for_async(lambda: len(webhook_sink.events) >= 2, 10, "two webhooks")
    assert webhook_sink.names() == ["room_started", "room_finished"]
    assert all(e.room.name == "wh-room" and e.id.startswith("EV_") for e in webhook_sink.events)
    content_type, auth = webhook_sink.raw[0]
    assert content_type == "application/webhook+json" and not auth.startswith("Bearer")
    assert webhook_sink.rejected == []


async def test_webhook_with_wrong_secret_is_rejected(webhook_sink: WebhookSink) -> None:
    """Webhooks signed with another secret fail WebhookReceiver; the emulator retries, gives up."""
    options = EmulatorOptions(
        port=0,
        api_secret="another-secret",
        webhook_urls=(webhook_sink.url,),
        webhook_attempts=2,
        webhook_backoff_s=0.01,
    )
    async with (
        Emulator(options) as emu,
        api.LiveKitAPI(emu.http_url, "devkey", "another-secret") as lk,
    ):
        await lk.room.create_room(api.CreateRoomRequest(name="wh-bad"))
        await wait_for_async(lambda: emu.core.webhooks.failed == 1, 10, "delivery given up")
    assert len(webhook_sink.rejected) == 2 and webhook_sink.events == []


async def test_join_applies_room_config_only_when_creating(webhook_sink: WebhookSink) -> None:
    """A token's roomConfig.agents apply only when its join creates the room; ACTIVE -> webhook."""
    async with Emulator(EmulatorOptions(port=0, webhook_urls=(webhook_sink.url,))) as emu:
        hub, first, second = emu.core.hub, _Sink(), _Sink()
        info = await hub.join(_join_claims(emu, "cfg-room", "alice", ["voice"]), first)
        assert info.participant.state == models.ParticipantInfo.State.JOINING
        await hub.join(_join_claims(emu, "cfg-room", "bob", ["other"]), second)
        names = sorted(d["agent_name"] for d in emu.state()["dispatches"])
        assert names == ["voice"]
        await hub.set_active("cfg-room", "bob")
        assert [m.update.participants[0].identity for m in first.sent] == ["bob"]
        await hub.leave("cfg-room", "bob")
        await wait_for_async(lambda: "participant_left" in webhook_sink.names(), 10,
                             "participant_left")
        joined = [e for e in webhook_sink.events if e.event == "participant_joined"]
        assert [e.participant.identity for e in joined] == ["bob"]
        plain = await hub.join(_join_claims(emu, "plain-room", "carol"), _Sink())
        assert plain.room.name == "plain-room"
        assert [
            d["agent_name"] for d in emu.state()["dispatches"] if d["room"] == "plain-room"
        ] == [""]


async def test_empty_room_closes_after_departure_timeout(webhook_sink: WebhookSink) -> None:
    """After the last participant leaves, the room closes once departure_timeout has passed."""
    options = EmulatorOptions(
        port=0, webhook_urls=(webhook_sink.url,), departure_timeout_s=1, room_reaper_interval_s=0.1
    )
    async with Emulator(options) as emu:
        await emu.core.hub.join(_join_claims(emu, "short", "dave"), _Sink())
        await emu.core.hub.leave("short", "dave")
        assert "short" in emu.core.rooms.rooms
        await wait_for_async(lambda: "room_finished" in webhook_sink.names(), 10, "room_finished")
        assert "short" not in emu.core.rooms.rooms


async def test_bad_join_tokens_are_refused() -> None:
    """verify_join_token raises PermissionError for bad signatures and tokens without roomJoin."""
    async with Emulator() as emu:
        bad = (
            api.AccessToken("devkey", "wrong-secret")
            .with_identity("x")
            .with_grants(api.VideoGrants(room_join=True, room="r"))
            .to_jwt()
        )
        with pytest.raises(PermissionError):
            emu.core.hub.verify_join_token(bad)
        no_join = api.AccessToken("devkey", "secret").with_grants(api.VideoGrants(room_list=True))
        with pytest.raises(PermissionError, match="roomJoin"):
            emu.core.hub.verify_join_token(no_join.to_jwt())
