"""Pure builders for the `SignalResponse` messages the `/rtc` endpoint sends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import cast

from livekit.protocol import models
from livekit.protocol import rtc as proto

_SID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


@dataclass(frozen=True)
class RtcOptions:
    """Signalling knobs; the defaults are what a real `livekit-server` sends."""

    ping_interval_s: int = 5  # must be > 0: the FFI panics on a zero period
    ping_timeout_s: int = 15  # the socket is dropped after this long without a message
    server_version: str = "1.9.0"
    server_protocol: int = 16
    node_id: str = "ND_voiceops_emulator"
    max_buffered_candidates: int = 64  # per peer connection, before the offer arrives
    close_timeout_s: float = 5.0  # bound on flushing `leave` and closing the socket


def new_sid(prefix: str) -> str:
    """A LiveKit-style id such as `TR_x3Kf…` (prefix plus 12 random characters)."""
    return prefix + "".join(secrets.choice(_SID_ALPHABET) for _ in range(12))


def join_response(
    room: models.Room,
    participant: models.ParticipantInfo,
    others: list[models.ParticipantInfo],
    options: RtcOptions,
) -> proto.SignalResponse:
    """The first message on the socket; publisher-primary like `livekit-server` defaults."""
    server_info = models.ServerInfo(
        edition=models.ServerInfo.Standard,
        version=options.server_version,
        protocol=options.server_protocol,
        node_id=options.node_id,
    )
    return proto.SignalResponse(
        join=proto.JoinResponse(
            room=room,
            participant=participant,
            other_participants=others,
            server_version=options.server_version,
            subscriber_primary=False,
            fast_publish=False,
            ping_interval=options.ping_interval_s,
            ping_timeout=options.ping_timeout_s,
            server_info=server_info,
        )
    )


def pong(ping: proto.Ping, now_ms: int) -> proto.SignalResponse:
    """Answer to `ping_req`; the client computes its RTT from `last_ping_timestamp`."""
    return proto.SignalResponse(
        pong_resp=proto.Pong(last_ping_timestamp=ping.timestamp, timestamp=now_ms)
    )


def legacy_pong(now_ms: int) -> proto.SignalResponse:
    """Answer to the pre-v13 `ping` (a bare timestamp)."""
    return proto.SignalResponse(pong=now_ms)


def answer(sdp: str, offer_id: int) -> proto.SignalResponse:
    return proto.SignalResponse(
        answer=proto.SessionDescription(type="answer", sdp=sdp, id=offer_id)
    )


def track_info(req: proto.AddTrackRequest, sid: str) -> models.TrackInfo:
    """The server's view of a track a client asked to publish."""
    mime_type = ""
    if req.simulcast_codecs and req.simulcast_codecs[0].codec:
        kind = "audio" if req.type == models.TrackType.AUDIO else "video"
        mime_type = f"{kind}/{req.simulcast_codecs[0].codec}"
    return models.TrackInfo(
        sid=sid,
        type=req.type,
        name=req.name,
        muted=req.muted,
        width=req.width,
        height=req.height,
        simulcast=len(req.layers) > 1,
        disable_dtx=req.disable_dtx,
        source=req.source,
        layers=req.layers,
        mime_type=mime_type,
        stereo=req.stereo,
        disable_red=req.disable_red,
        encryption=req.encryption,
        stream=req.stream,
        audio_features=req.audio_features,
        backup_codec_policy=req.backup_codec_policy,
    )


def track_published(cid: str, track: models.TrackInfo) -> proto.SignalResponse:
    return proto.SignalResponse(track_published=proto.TrackPublishedResponse(cid=cid, track=track))


def disconnect_reason(reason: str) -> models.DisconnectReason:
    """`models.DisconnectReason` named by `reason` ("ROOM_DELETED", …), else UNKNOWN_REASON."""
    try:
        # protobuf enums are ints at run time; the stubs give them a class of their own
        return cast(
            "models.DisconnectReason", models.DisconnectReason.Value(reason.strip().upper())
        )
    except ValueError:
        return models.DisconnectReason.UNKNOWN_REASON


def leave(reason: str) -> proto.SignalResponse:
    """Server-initiated leave: the client must not try to resume."""
    return proto.SignalResponse(
        leave=proto.LeaveRequest(
            can_reconnect=False,
            reason=disconnect_reason(reason),
            action=proto.LeaveRequest.DISCONNECT,
        )
    )
