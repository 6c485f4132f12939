"""POST /api/token: a browser token to join one room as a caller.

The token grants only what a caller needs: join that one room, publish a microphone, subscribe,
send data. Not: any other room, camera or screen share, changing its own metadata or
attributes, hiding, recording, admin. Identities and rooms voiceops owns are refused.
"""

from __future__ import annotations

import datetime

from aiohttp import web
from livekit import api

from .bodies import read_json
from .context import CTX
from .validation import (
    RESERVED_IDENTITY_PREFIXES,
    RESERVED_ROOM_PREFIXES,
    check_display_name,
    check_name,
    check_not_reserved,
)

FIELDS = ("room", "identity", "name")


async def mint_token(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    data = await read_json(request, FIELDS)
    room = check_not_reserved("room", check_name("room", data.get("room")),
                              RESERVED_ROOM_PREFIXES)
    identity = check_not_reserved("identity", check_name("identity", data.get("identity")),
                                  RESERVED_IDENTITY_PREFIXES)
    name = check_display_name("name", data.get("name"))
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True,
                             can_publish_data=True, can_publish_sources=["microphone"],
                             can_update_own_metadata=False, hidden=False, recorder=False)
    token = (api.AccessToken(ctx.options.livekit_api_key, ctx.secrets.livekit_api_secret)
             .with_identity(identity)
             .with_name(name or identity)
             .with_grants(grants)
             .with_ttl(datetime.timedelta(seconds=ctx.options.token_ttl_s))
             .to_jwt())
    return web.json_response({"token": token, "url": ctx.options.livekit_url})
