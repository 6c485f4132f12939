"""JWT handling shared by every route: bearer extraction, verification, agent job tokens, ids."""

from __future__ import annotations

import datetime
import secrets
import string

from aiohttp import web
from livekit import api
from livekit.api.access_token import Claims
from livekit.protocol import models

_ID_ALPHABET = string.ascii_letters + string.digits
BEARER_PREFIX = "Bearer "
# Server-side attribute the Go server adds to agent job tokens (the worker adds "lk.agent.name").
AGENT_NAME_ATTRIBUTE = "lk.agent_name"


class AuthError(Exception):
    """A token missing where required, malformed or not verifiable (HTTP 401, plain text)."""


def new_id(prefix: str) -> str:
    """A LiveKit-style id such as "RM_x3K…" (prefix + 12 random alphanumerics)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def request_token(request: web.Request) -> str | None:
    """The request's token: "Authorization: Bearer …" or ?access_token= (as in Go)."""
    header = request.headers.get("Authorization", "")
    if header:
        if not header.startswith(BEARER_PREFIX):
            raise AuthError("invalid authorization header. Must start with Bearer ")
        return header[len(BEARER_PREFIX) :].strip() or None
    return request.query.get("access_token") or None


def verify_token(verifier: api.TokenVerifier, token: str) -> Claims:
    """Verified claims; AuthError (never echoing the token) when it does not parse or verify."""
    try:
        return verifier.verify(token)
    except Exception as exc:  # jwt raises many types; every one means "not authenticated"
        raise AuthError(f"invalid authorization token: {type(exc).__name__}") from None


def build_agent_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    name: str,
    metadata: str,
    attributes: dict[str, str],
    permissions: models.ParticipantPermission,
    ttl_s: int,
) -> str:
    """The job token a worker's job process joins with, shaped like Go's BuildAgentToken."""
    grants = api.VideoGrants(
        room_join=True,
        agent=True,
        room=room,
        can_subscribe=permissions.can_subscribe,
        can_publish=permissions.can_publish,
        can_publish_data=permissions.can_publish_data,
        hidden=permissions.hidden or None,
        can_update_own_metadata=permissions.can_update_metadata,
        can_subscribe_metrics=permissions.can_subscribe_metrics or None,
    )
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_kind("agent")
        .with_grants(grants)
        .with_ttl(datetime.timedelta(seconds=ttl_s))
        .with_attributes(attributes)
    )
    if name:
        token = token.with_name(name)
    if metadata:
        token = token.with_metadata(metadata)
    return token.to_jwt()
