"""``python -m bench.floor_status SOCKET BODYFILE``: a bare aiohttp server on a unix socket
answering ``GET /status`` with a fixed JSON body (the supervisor's own status, captured just
before). Polled beside the supervisor during the burst: the same-run reference for what the
machine's load alone does to an answer's latency."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web


async def serve(path: str, body: bytes) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, path).start()
    print("ready", flush=True)
    await asyncio.Event().wait()  # until SIGTERM ends the process


def main() -> None:
    asyncio.run(serve(sys.argv[1], Path(sys.argv[2]).read_bytes()))


if __name__ == "__main__":
    main()
