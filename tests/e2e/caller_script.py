"""A caller in a room: ``python caller_script.py URL TOKEN`` joins with a real ``rtc.Room``,
prints ``connected``, prints ``disconnected <reason>`` if the server removes it, and leaves
at stdin EOF."""

from __future__ import annotations

import asyncio
import os
import sys

from livekit import rtc
from livekit.protocol import models


async def main(url: str, token: str) -> None:
    room = rtc.Room()
    room.on("disconnected", lambda reason: print("disconnected", models.DisconnectReason.Name(
        reason), flush=True))
    await room.connect(url, token)
    print("connected", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    await room.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    sys.stdout.flush()
    os._exit(0)  # the FFI threads must not keep the process alive
