"""An operator's own worker program that hard-codes its agent name (as `workers.command` may run).

It registers with LiveKit as 'voice' whatever voiceops' agent.name says, and only tells the
supervisor its health port (a ``ready`` event without a name): the monitor must learn the
name from livekit-agents' GET /worker.

``other_name_worker.py URL KEY [NAME [LOAD]]``: another name, and a fixed load to report (with
a 0.95 threshold, so a load of 0.8 still reports AVAILABLE — and gets no job from LiveKit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from livekit.agents import AgentServer, JobContext

from voiceops import events

HARD_CODED_NAME = "voice"


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()


async def main(url: str, api_key: str, api_secret: str, name: str, load: float) -> None:
    server = AgentServer(ws_url=url, api_key=api_key, api_secret=api_secret, host="127.0.0.1",
                         port=0, num_idle_processes=0, load_fnc=lambda: load,
                         load_threshold=0.95, max_retry=3)
    server.rtc_session(entrypoint, agent_name=name)
    server.on("worker_registered", lambda worker_id, _info: events.emit(events.Ready(
        worker_id=worker_id, http_port=server.worker_info.http_port)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(server.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await server.aclose()
    stopper.cancel()
    await asyncio.gather(runner, stopper, return_exceptions=True)


if __name__ == "__main__":
    name = sys.argv[3] if len(sys.argv) > 3 else HARD_CODED_NAME
    load = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    asyncio.run(main(sys.argv[1], sys.argv[2], os.environ["LIVEKIT_API_SECRET"], name, load))
