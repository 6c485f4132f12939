"""The room core's track rules, driven in-process (fake sinks, generated media tracks)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from emulator_helpers import WebhookSink
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from voiceops.emulator import Emulator, EmulatorOptions
from voiceops.emulator.rtc_media import ForwardedTrack
from voiceops.testing.waiting import wait_for_async


class _Sink:
    def __init__(self) -> None:
        self.sent: list[rtc_pb.SignalResponse] = []
        self.subscribed: dict[str, tuple[str, ForwardedTrack]] = {}
        self.unsubscribed: list[str] = []

    async def send(self, msg: rtc_pb.SignalResponse) -> None:
        self.sent.append(msg)

    async def close(self, reason: str) -> None:
        pass

    def subscribe(self, publisher_sid: str, track: models.TrackInfo, media: ForwardedTrack) -> None:
        self.subscribed[track.sid] = (publisher_sid, media)

    def unsubscribe(self, track_sid: str) -> None:
        self.unsubscribed.append(track_sid)

    def tracks_of(self, identity: str) -> list[str]:
        """Track sids of `identity` in the last ParticipantUpdate about it."""
        infos = [p for m in self.sent if m.WhichOneof("message") == "update"
                 for p in m.update.participants if p.identity == identity]
        return [t.sid for t in infos[-1].tracks] if infos else []


def _claims(emu: Emulator, room: str, identity: str) -> api.Claims:
    tok = (api.AccessToken(emu.options.api_key, emu.options.api_secret).with_identity(identity)
           .with_grants(api.VideoGrants(room_join=True, room=room)).with_ttl(timedelta(minutes=5)))
    return emu.core.hub.verify_join_token(tok.to_jwt())


async def _drained(copy: ForwardedTrack) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(MediaStreamError):  # noqa: PT012 - drains until the track ends
            while True:
                await copy.recv()
    assert copy.readyState == "ended"


def _track(sid: str, kind: int = models.TrackType.AUDIO) -> models.TrackInfo:
    return models.TrackInfo(sid=sid, type=kind, name="t", source=models.TrackSource.MICROPHONE)


async def test_audio_forwarded_to_auto_subscribers_only_and_video_listed_not_forwarded(
        webhook_sink: WebhookSink) -> None:
    """Audio goes to auto-subscribers (a copy per subscriber, id = track sid); video is listed
    only."""
    async with Emulator(EmulatorOptions(port=0, webhook_urls=(webhook_sink.url,))) as emu:
        hub, alice, bob, carol = emu.core.hub, _Sink(), _Sink(), _Sink()
        pub = await hub.join(_claims(emu, "r", "alice"), alice)
        await hub.join(_claims(emu, "r", "bob"), bob)
        await hub.join(_claims(emu, "r", "carol"), carol, auto_subscribe=False)
        await hub.publish_track("r", "alice", _track("TR_audio"), AudioStreamTrack())
        await hub.publish_track(
            "r", "alice", _track("TR_video", models.TrackType.VIDEO), VideoStreamTrack()
        )
        assert (
            set(bob.subscribed) == {"TR_audio"}
            and carol.subscribed == {}
            and alice.subscribed == {}
        )
        publisher_sid, copy = bob.subscribed["TR_audio"]
        assert (
            publisher_sid == pub.participant.sid and copy.id == "TR_audio" and copy.kind == "audio"
        )
        assert bob.tracks_of("alice") == carol.tracks_of("alice") == ["TR_audio", "TR_video"]
        assert (await copy.recv()).sample_rate == 8000  # AudioStreamTrack's silence, relayed

        await hub.update_subscription("r", "carol", ["TR_audio", "TR_video"], True)
        assert set(carol.subscribed) == {"TR_audio"}
        await hub.update_subscription("r", "carol", ["TR_audio"], False)
        assert carol.unsubscribed == ["TR_audio"]
        await hub.mute_track("r", "alice", "TR_audio", True)
        update = bob.sent[-1].update.participants[0]
        assert [t.muted for t in update.tracks if t.sid == "TR_audio"] == [True]

        await hub.leave("r", "alice")
        assert bob.unsubscribed == ["TR_audio"]
        await _drained(copy)  # the subscriber's sender gets what was queued, then the end
        assert emu.core.rooms.list_participants("r")[0].tracks == []
        await wait_for_async(
            lambda: webhook_sink.names().count("track_unpublished") == 2, 10, "webhooks"
        )
        events = [
            (e.event, e.track.sid) for e in webhook_sink.events if e.event.startswith("track_")
        ]
        assert sorted(events) == sorted(
            [
                ("track_published", "TR_audio"),
                ("track_published", "TR_video"),
                ("track_unpublished", "TR_audio"),
                ("track_unpublished", "TR_video"),
            ]
        )


async def test_duplicate_identity_and_room_deletion_take_tracks_down() -> None:
    """A second join with the same identity, or DeleteRoom, unpublishes the tracks for everyone."""
    async with Emulator() as emu:
        hub, bob = emu.core.hub, _Sink()
        await hub.join(_claims(emu, "d", "alice"), _Sink())
        await hub.join(_claims(emu, "d", "bob"), bob)
        await hub.publish_track("d", "alice", _track("TR_old"), AudioStreamTrack())
        await hub.join(_claims(emu, "d", "alice"), _Sink())
        assert bob.unsubscribed == ["TR_old"]
        assert not emu.core.hub.media.has("TR_old")
        assert [
            p.tracks for p in emu.core.rooms.list_participants("d") if p.identity == "alice"
        ] == [[]]
        await hub.publish_track("d", "alice", _track("TR_new"), AudioStreamTrack())
        assert emu.core.hub.media.has("TR_new")
        await emu.core.rooms.delete_room("d")
        assert not emu.core.hub.media.has("TR_new")


@pytest.mark.parametrize("frames", [3, 60])
async def test_forwarded_copy_drops_oldest_when_its_reader_lags(frames: int) -> None:
    """A subscriber copy holds a bounded backlog: the oldest frames go, the newest stay, in
    order."""
    copy = ForwardedTrack("audio", "TR_x", max_frames=50)
    for index in range(frames):
        copy.push(index)
    kept = [await copy.recv() for _ in range(min(frames, 50))]
    assert kept == list(range(max(0, frames - 50), frames)) and copy.dropped == max(0, frames - 50)
