"""Server-API tokens signed once per grant and reused until near expiry.

``livekit.api`` signs a fresh JWT (PyJWT, HS256) for every call; on the proxy's hot path that
was about a third of its CPU. LiveKit checks a server-API token's grants and expiry, never
its freshness, so a token per distinct grant (``room_list``; ``room_admin`` for one room) is
signed once, kept for :data:`TOKEN_TTL_S` and re-signed :data:`RENEW_BEFORE_S` before it
expires. A new room still needs its own token (its grant names the room): that signature is
made here directly (one HMAC over a precomputed header), not through PyJWT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from livekit import api

TOKEN_TTL_S = 600.0
RENEW_BEFORE_S = 60.0
MAX_TOKENS = 4096  # distinct grants kept (least recently used dropped first)
AUTHORIZATION = "authorization"  # the header name livekit.api's Twirp client sends
_HEADER_B64 = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_VIDEO_KEYS = tuple((f.name, _camel(f.name)) for f in fields(api.VideoGrants))


def video_claims(grants: api.VideoGrants) -> dict[str, Any]:
    """The ``video`` claim as livekit.api writes it: None and "" left out, camelCase keys."""
    out: dict[str, Any] = {}
    for name, key in _VIDEO_KEYS:
        value = getattr(grants, name)
        if value is not None and value != "":
            out[key] = value
    return out


class SignedTokens:
    """Authorization headers for livekit.api services, one signed token per distinct grant."""

    def __init__(self, api_key: str, api_secret: str, *, ttl_s: float = TOKEN_TTL_S,
                 renew_before_s: float = RENEW_BEFORE_S, max_tokens: int = MAX_TOKENS,
                 clock: Callable[[], float] = time.time) -> None:
        self._iss = api_key
        self._mac = hmac.new(api_secret.encode(), digestmod=hashlib.sha256)
        self._ttl_s = ttl_s
        self._renew_before_s = renew_before_s
        self._max = max_tokens
        self._clock = clock  # wall clock: exp and nbf are compared with LiveKit's
        self._cache: OrderedDict[str, tuple[dict[str, str], float]] = OrderedDict()
        self.signed = 0

    def __len__(self) -> int:
        return len(self._cache)

    def auth_header(self, grants: api.VideoGrants | None,
                    sip: api.SIPGrants | None = None) -> dict[str, str]:
        """Drop-in for ``livekit.api``'s ``Service._auth_header`` (same arguments)."""
        if sip is not None:  # the proxy never sends SIP grants: no cache for them
            raise ValueError("SIP grants are not signed by the proxy's token cache")
        video = video_claims(grants) if grants is not None else {}
        key = _COMPACT.encode(video)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[1] - now > self._renew_before_s:
            self._cache.move_to_end(key)
            return hit[0]
        header = {AUTHORIZATION: "Bearer " + self._sign(video, now)}
        self._cache[key] = (header, now + self._ttl_s)
        self._cache.move_to_end(key)
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return header

    def _sign(self, video: dict[str, Any], now: float) -> str:
        claims: dict[str, Any] = {"video": video} if video else {}
        claims.update(sub="", iss=self._iss, nbf=int(now), exp=int(now + self._ttl_s))
        signing_input = _HEADER_B64 + b"." + _b64(_COMPACT.encode(claims).encode())
        mac = self._mac.copy()
        mac.update(signing_input)
        self.signed += 1
        return (signing_input + b"." + _b64(mac.digest())).decode()


def install(lkapi: api.LiveKitAPI, tokens: SignedTokens) -> None:
    """Make the proxy's LiveKitAPI sign through ``tokens`` (the services it calls)."""
    for service in (lkapi.room, lkapi.agent_dispatch):
        service._auth_header = tokens.auth_header  # type: ignore[method-assign]
