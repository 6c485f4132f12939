"""The room list behind :class:`~.roombook.RoomBook`: taken once at start, then every
``interval_s`` (and at once when the book had to forget), always off the request path."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .errors import ApiError
from .livekit_gateway import LiveKitGateway
from .roombook import RoomBook

logger = logging.getLogger("voiceops.proxy.rooms")
SYNC_INTERVAL_S = 60.0
RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class RoomSync:
    def __init__(self, gateway: LiveKitGateway, book: RoomBook, *,
                 interval_s: float = SYNC_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._gw = gateway
        self._book = book
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.syncs = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="proxy-room-sync")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def sync_once(self) -> None:
        asked_at = self._clock()
        rooms = await self._gw.list_rooms([], retry=False)
        self._book.apply_room_list(rooms, asked_at)
        self.syncs += 1

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.sync_once()
            except ApiError as exc:
                delay = RETRY_S[min(failures, len(RETRY_S) - 1)]
                failures += 1
                logger.warning("room_sync_failed error=%s retry_in_s=%s", exc.code, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            await self._wait_next()

    async def _wait_next(self) -> None:
        """Sleep the interval, waking early when the book lost its sync (it overflowed)."""
        deadline = self._clock() + self._interval_s
        while self._book.synced and self._clock() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - self._clock())))
