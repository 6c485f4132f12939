"""The burst benchmark's baseline leg, in its own process: ``python -m bench.sdk_joins URL KEY
PREFIX N`` (the API secret in ``LIVEKIT_API_SECRET``) joins N bare ``livekit`` rtc SDK clients
to the rooms PREFIX-0 .. PREFIX-(N-1) concurrently, with agent-kind tokens.

It prints ``ready``, waits for a line on stdin, joins, then prints one JSON line: ``started``,
room -> ``time.monotonic()`` at the start of its ``connect`` (the clock is system-wide, so the
bench process compares it with its own polls), and ``cpu_s``, this process's CPU seconds when
the joins began. It stays in its rooms until stdin closes, and leaves them. A process of its
own, like each job process of the voiceops leg; and the bench process never loads livekit's
FFI runtime, which aborted the whole run at interpreter exit ("panic in a function that cannot
unwind").
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import warnings

from livekit import api, rtc


def token(key: str, secret: str, room: str, identity: str) -> str:
    return (api.AccessToken(key, secret).with_identity(identity).with_kind("agent")
            .with_grants(api.VideoGrants(room_join=True, room=room, agent=True)).to_jwt())


async def join_all(url: str, key: str, secret: str, prefix: str, n: int) -> None:
    names = [f"{prefix}-{i}" for i in range(n)]
    tokens = [token(key, secret, name, f"agent-{i}") for i, name in enumerate(names)]
    rooms = [rtc.Room() for _ in names]
    started: dict[str, float] = {}

    async def join(i: int) -> None:
        started[names[i]] = time.monotonic()
        await rooms[i].connect(url, tokens[i], rtc.RoomOptions(auto_subscribe=False))

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the bench's "go", once it watches the rooms
    cpu_s = time.process_time()
    try:
        await asyncio.gather(*(join(i) for i in range(n)))
        print(json.dumps({"started": started, "cpu_s": cpu_s}), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the bench closes our stdin
    finally:
        await asyncio.gather(*(r.disconnect() for r in rooms), return_exceptions=True)


def main() -> None:
    url, key, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    warnings.filterwarnings("ignore", message="The HMAC key is")  # the public dev secret
    asyncio.run(join_all(url, key, os.environ["LIVEKIT_API_SECRET"], prefix, n))
    sys.stdout.flush()
    os._exit(0)  # skip livekit's FFI teardown at exit (see the module docstring)


if __name__ == "__main__":
    main()
