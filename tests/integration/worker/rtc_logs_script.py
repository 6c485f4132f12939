"""Child of test_rtc_runtime.py: start the rtc runtime as a job process does, join one room,
print how many native log records reached Python and the RUST_LOG in force, as JSON."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys

import livekit.rtc._ffi_client as ffi
from livekit import api, rtc

from voiceops.worker import rtcruntime

crossed: collections.Counter[int] = collections.Counter()
_level = ffi.to_python_level


def _counting(level: int) -> int | None:  # called once per forwarded record
    crossed[level] += 1
    return _level(level)


ffi.to_python_level = _counting  # type: ignore[assignment]


async def main(url: str, key: str, secret: str, room: str) -> None:
    rtcruntime.start()
    token = (api.AccessToken(key, secret).with_identity("rtc-logs")
             .with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt())
    lk_room = rtc.Room()
    await lk_room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
    await asyncio.sleep(1.2)  # the native logger flushes its batch every second
    print(json.dumps({"records": sum(crossed.values()), "rust_log": os.environ.get("RUST_LOG"),
                      "connected": lk_room.isconnected()}), flush=True)
    await lk_room.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
    os._exit(0)  # skip the FFI's teardown at exit, as the job processes end
