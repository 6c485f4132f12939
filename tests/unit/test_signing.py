"""Server-API tokens: valid for LiveKit's verifier, signed once per grant, renewed near expiry."""

from __future__ import annotations

import warnings

from livekit import api

from voiceops.signing import SignedTokens

KEY, SECRET = "devkey", "a-long-enough-test-secret-for-hs256-0123456789"


def verify(header: dict[str, str]) -> api.Claims:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = header["authorization"].removeprefix("Bearer ")
        return api.TokenVerifier(KEY, SECRET).verify(token)


def test_token_carries_the_grant_and_verifies() -> None:
    """The cached token is what livekit.api would send: same grant, signed with our secret."""
    tokens = SignedTokens(KEY, SECRET)
    claims = verify(tokens.auth_header(api.VideoGrants(room_admin=True, room="r1")))
    assert claims.video is not None and claims.video.room_admin and claims.video.room == "r1"


def test_one_signature_per_grant_until_near_expiry() -> None:
    """Repeated grants reuse the signed token; a different room or a near expiry signs anew."""
    now = [1_000_000.0]
    tokens = SignedTokens(KEY, SECRET, ttl_s=600, renew_before_s=60, clock=lambda: now[0])
    first = tokens.auth_header(api.VideoGrants(room_list=True))
    assert tokens.auth_header(api.VideoGrants(room_list=True)) is first
    tokens.auth_header(api.VideoGrants(room_admin=True, room="r2"))
    assert tokens.signed == 2
    now[0] += 541  # 59 s before expiry
    renewed = tokens.auth_header(api.VideoGrants(room_list=True))
    assert renewed != first and tokens.signed == 3


def test_cache_is_bounded() -> None:
    """Distinct grants beyond max_tokens push out the least recently used."""
    tokens = SignedTokens(KEY, SECRET, max_tokens=3)
    for i in range(10):
        tokens.auth_header(api.VideoGrants(room_admin=True, room=f"r{i}"))
    assert len(tokens) == 3
