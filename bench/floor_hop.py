"""``python -m bench.floor_hop URL KEY SECRET``: the least an HTTP dispatch proxy can cost.

An aiohttp server (uvloop, as the proxy runs) whose only route answers a POST with one
``CreateDispatch`` on a long-lived ``LiveKitAPI``: no validation, no middlewares, no room
book, no event, no log. The dispatch benchmark measures the real proxy against it to see
what voiceops adds on top of the hop that any proxy pays. It prints its port on stdout.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from livekit import api

AGENT = "letta-voice-agent"


async def serve(url: str, key: str, secret: str) -> None:
    async with api.LiveKitAPI(url, key, secret) as lk:
        async def dispatch(request: web.Request) -> web.Response:
            room = (await request.json())["room"]
            created = await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT, room=room))
            return web.json_response({"success": True, "dispatch_id": created.id})

        app = web.Application()
        app.router.add_post("/api/dispatch-agent", dispatch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()  # until SIGTERM ends the process


def main() -> None:
    import uvloop

    url, key, secret = sys.argv[1:4]
    uvloop.run(serve(url, key, secret))


if __name__ == "__main__":
    main()
