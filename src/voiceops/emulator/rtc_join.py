"""What a client asks for when it opens a signalling socket: v0 query parameters or v1 join_request.

Pure functions. `/rtc/v1?join_request=<base64url WrappedJoinRequest>` (the JoinRequest inside is
maybe gzip-compressed) means single-PC mode, with the client's first publisher offer and its
AddTrackRequests inside; `/rtc?auto_subscribe=…` is the v0 form (auto-subscribe defaults on).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from livekit.protocol import rtc as proto

MAX_JOIN_REQUEST_BYTES = 1 << 20  # Go caps the decompressed request too


class JoinRequestError(ValueError):
    """A join_request that cannot be decoded (answered 400, like the Go server)."""


@dataclass(frozen=True)
class JoinSettings:
    single_pc: bool = False
    auto_subscribe: bool = True
    publisher_offer: proto.SessionDescription | None = None
    add_tracks: tuple[proto.AddTrackRequest, ...] = ()


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


def v0_settings(query: Mapping[str, str]) -> JoinSettings:
    auto = query.get("auto_subscribe", "")
    return JoinSettings(single_pc=False, auto_subscribe=_truthy(auto) if auto else True)


def v1_settings(query: Mapping[str, str]) -> JoinSettings:
    """Settings from `join_request`; JoinRequestError names what is wrong."""
    encoded = query.get("join_request", "")
    if not encoded:
        raise JoinRequestError("join_request is required")
    try:
        wrapped = proto.WrappedJoinRequest.FromString(
            base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, DecodeError):
        raise JoinRequestError("cannot decode wrapped join request") from None
    raw = wrapped.join_request
    if wrapped.compression == proto.WrappedJoinRequest.GZIP:
        try:  # bounded: a small gzip bomb must not inflate into memory
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = inflate.decompress(raw, MAX_JOIN_REQUEST_BYTES + 1)
        except zlib.error:
            raise JoinRequestError("cannot read decompressed join request") from None
    if len(raw) > MAX_JOIN_REQUEST_BYTES:
        raise JoinRequestError("join request too large")
    try:
        req = proto.JoinRequest.FromString(raw)
    except DecodeError:
        raise JoinRequestError("cannot unmarshal join request") from None
    return JoinSettings(
        single_pc=True,
        auto_subscribe=req.connection_settings.auto_subscribe,
        publisher_offer=req.publisher_offer if req.HasField("publisher_offer") else None,
        add_tracks=tuple(req.add_track_requests),
    )
