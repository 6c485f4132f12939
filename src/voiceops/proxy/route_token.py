"""POST /api/token: a browser token to join one room (room_join for that room only)."""

from __future__ import annotations

import datetime

from aiohttp import web
from livekit import api

from .bodies import read_json
from .context import CTX
from .validation import check_display_name, check_name

FIELDS = ("room", "identity", "name")


async def mint_token(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    data = await read_json(request, FIELDS)
    room = check_name("room", data.get("room"))
    identity = check_name("identity", data.get("identity"))
    name = check_display_name("name", data.get("name"))
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True,
                             can_publish_data=True)
    token = (api.AccessToken(ctx.options.livekit_api_key, ctx.secrets.livekit_api_secret)
             .with_identity(identity)
             .with_name(name or identity)
             .with_grants(grants)
             .with_ttl(datetime.timedelta(seconds=ctx.options.token_ttl_s))
             .to_jwt())
    return web.json_response({"token": token, "url": ctx.options.livekit_url})
