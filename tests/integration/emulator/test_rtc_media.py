"""Audio between two real `livekit.rtc.Room` clients through the server, checked as audio.

Each client is a child process (rtc_client_script.py). Runs unchanged against a real
`livekit-server --dev` when LIVEKIT_URL is set (the webhook test needs the emulator's flag).
"""

from __future__ import annotations

import time

import pytest
from emulator_helpers import WebhookSink, participants_by_identity, until_participants
from livekit.protocol import models

try:
    from .rtc_client import RtcClient, connect, rtc_clients
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_client import RtcClient, connect, rtc_clients

from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.process]

EVENT_DEADLINE_S = 15.0
TONE_HZ = 440.0
LISTEN_S = 2.0


async def _participants(server, room: str) -> dict[str, models.ParticipantInfo]:
    return await participants_by_identity(server, room)


async def _until_listed(server, room: str, predicate) -> dict[str, models.ParticipantInfo]:
    return await until_participants(server, room, predicate, EVENT_DEADLINE_S)


async def _hear_tone(listener: RtcClient, track_sid: str) -> dict:
    await listener.send("listen", track_sid, str(LISTEN_S))
    heard = await listener.expect("heard", "error", timeout_s=LISTEN_S + EVENT_DEADLINE_S)
    assert heard["event"] == "heard", heard
    return heard


def _assert_tone(heard: dict) -> None:
    assert heard["frames"] >= 100, heard  # 10 ms frames: at least 1 s of the 2 s listened
    assert heard["rms"] > 1000, heard  # the tone is at 0.3 full scale (~6950 RMS)
    assert abs(heard["dominant_hz"] - TONE_HZ) <= 10, heard


@pytest.mark.parametrize("mode", ["v1", "v0"])
async def test_tone_reaches_subscriber_and_follows_mute_and_unpublish(
    livekit_server_module, mode
) -> None:
    """B hears A's 440 Hz tone, mapped to A; ListParticipants lists it; mute and unpublish reach
    B."""
    server, flags = livekit_server_module, ("v0",) if mode == "v0" else ()
    room = f"media-{mode}-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice", *flags)
        await connect(bob, server, room, "bob", *flags)
        await alice.send("tone", str(TONE_HZ), "30")
        published = await alice.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
        subscribed = await bob.expect("track_subscribed", timeout_s=EVENT_DEADLINE_S)
        assert (subscribed["identity"], subscribed["sid"]) == ("alice", published["sid"])
        assert subscribed["track_sid"] == published["sid"]
        _assert_tone(await _hear_tone(bob, published["sid"]))

        listed = await _until_listed(
            server, room, lambda ps: ps.get("alice") and ps["alice"].tracks
        )
        (track,) = listed["alice"].tracks
        assert (track.sid, track.type, track.source) == (
            published["sid"], models.TrackType.AUDIO, models.TrackSource.MICROPHONE)
        assert not listed["bob"].tracks

        await alice.send("mute")
        muted = await bob.expect("track_muted", timeout_s=EVENT_DEADLINE_S)
        assert muted["sid"] == published["sid"]
        await _until_listed(
            server, room, lambda ps: ps["alice"].tracks and ps["alice"].tracks[0].muted
        )
        await alice.send("unmute")
        await bob.expect("track_unmuted", timeout_s=EVENT_DEADLINE_S)

        await alice.send("unpublish")
        gone = await bob.expect("track_unpublished", timeout_s=EVENT_DEADLINE_S)
        assert (gone["identity"], gone["sid"]) == ("alice", published["sid"])
        await _until_listed(server, room, lambda ps: not ps["alice"].tracks)


async def test_leaving_removes_the_track_and_a_late_joiner_hears_it(livekit_server_module) -> None:
    """A joiner is subscribed to a track published before it came; the publisher leaving removes
    it."""
    server = livekit_server_module
    room = f"media-late-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice")
        await alice.send("tone", str(TONE_HZ), "30")
        published = await alice.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
        await _until_listed(server, room, lambda ps: ps.get("alice") and ps["alice"].tracks)
        await connect(bob, server, room, "bob")
        subscribed = await bob.expect("track_subscribed", timeout_s=EVENT_DEADLINE_S)
        assert (subscribed["identity"], subscribed["sid"]) == ("alice", published["sid"])
        _assert_tone(await _hear_tone(bob, published["sid"]))
        await alice.send("disconnect")
        gone = await bob.expect("track_unpublished", timeout_s=EVENT_DEADLINE_S)
        assert gone["sid"] == published["sid"]
        await bob.expect("participant_disconnected", timeout_s=EVENT_DEADLINE_S)
        await _until_listed(server, room, lambda ps: set(ps) == {"bob"})


async def test_without_auto_subscribe_audio_comes_only_when_asked(livekit_server_module) -> None:
    """A joiner without auto-subscribe sees the publication, gets no media until it subscribes."""
    server = livekit_server_module
    room = f"media-manual-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice")
        await connect(bob, server, room, "bob", "manual")
        await alice.send("tone", str(TONE_HZ), "30")
        published = await alice.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
        seen = await bob.expect("track_published", timeout_s=EVENT_DEADLINE_S)
        assert seen["sid"] == published["sid"]
        with pytest.raises(TimeoutError):
            await bob.expect("track_subscribed", timeout_s=2.0)
        await bob.send("subscribe", published["sid"])
        await bob.expect("track_subscribed", timeout_s=EVENT_DEADLINE_S)
        _assert_tone(await _hear_tone(bob, published["sid"]))


async def test_track_webhooks(
    livekit_server_module, livekit_server_factory, webhook_sink: WebhookSink
) -> None:
    """track_published and track_unpublished carry the track and its publisher (also on leave)."""
    server = livekit_server_factory("--webhook-url", webhook_sink.url)
    if not server.is_emulator:
        pytest.skip("the real server's webhook URL is its own configuration")
    room = f"media-hooks-{time.monotonic_ns()}"
    async with rtc_clients(2, server, livekit_server_module) as (alice, bob):
        await connect(alice, server, room, "alice")
        await connect(bob, server, room, "bob")
        sids = []
        for _ in range(2):
            await alice.send("tone", str(TONE_HZ), "30")
            sids.append(
                (await alice.expect("published", "error", timeout_s=EVENT_DEADLINE_S))["sid"]
            )
            await bob.expect("track_subscribed", timeout_s=EVENT_DEADLINE_S)
        await alice.send("unpublish")  # the second track
        await alice.send("disconnect")  # the first goes with its publisher
        await alice.expect("disconnected", timeout_s=EVENT_DEADLINE_S)

        def track_events() -> list[tuple[str, str, str]]:
            return [(e.event, e.track.sid, e.participant.identity) for e in webhook_sink.events
                    if e.event.startswith("track_")]

        await wait_for_async(lambda: len(track_events()) >= 4, EVENT_DEADLINE_S,
                             "four track webhooks")
    assert sorted(track_events()) == sorted([
        ("track_published", sids[0], "alice"), ("track_published", sids[1], "alice"),
        ("track_unpublished", sids[1], "alice"), ("track_unpublished", sids[0], "alice")])
    published = next(e for e in webhook_sink.events if e.event == "track_published")
    assert published.room.name == room and published.track.type == models.TrackType.AUDIO
    assert webhook_sink.rejected == []


async def test_rtc_sdk_joins_through_v1_without_fallback(livekit_server_module) -> None:
    """The SDK's default connect (single PC, /rtc/v1) succeeds without the v0 fallback warning."""
    server = livekit_server_module
    async with rtc_clients(2, server) as (alice, _bob):
        await connect(alice, server, f"media-v1-{time.monotonic_ns()}", "alice")
        await alice.send("disconnect")
        await alice.expect("disconnected", timeout_s=EVENT_DEADLINE_S)
        logs = [e["message"] for e in alice.events if e["event"] == "log"]
    assert not [m for m in logs if "v0" in m or "v1" in m or "signal connection failed" in m], logs
