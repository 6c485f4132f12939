"""Find-or-create one dispatch of our agent per room: no aiohttp here, only the LiveKit gateway.

Two browsers (or one double-click) asking for the same room must not create two agents, so
the whole look-then-create sequence runs under a per-room lock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from livekit.protocol import agent_dispatch

from .errors import ApiError
from .livekit_gateway import RETRY_BACKOFF_S, LiveKitGateway
from .validation import LETTA_AGENT_KEY

UNREACHABLE = "livekit_unreachable"


@dataclass(frozen=True)
class DispatchResult:
    room: str
    dispatch_id: str
    agent_name: str
    room_existed: bool
    reused: bool
    message: str


class KeyedLocks:
    """One asyncio.Lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Dispatcher:
    def __init__(self, gateway: LiveKitGateway, agent_name: str) -> None:
        self._gw = gateway
        self._agent_name = agent_name
        self._locks = KeyedLocks()

    async def dispatch(self, room: str, metadata: dict[str, Any]) -> DispatchResult:
        async with self._locks.hold(room):
            existed, existing = await self._existing(room)
            if existing is not None:
                return self._result(existing, existed, reused=True, wanted=metadata)
            encoded = json.dumps(metadata, separators=(",", ":")) if metadata else ""
            try:
                created = await self._gw.create_dispatch(self._agent_name, room, encoded)
            except ApiError as exc:
                if exc.code != UNREACHABLE:
                    raise
                # The request may have reached LiveKit before the connection broke: look
                # before trying once more, so a retry never doubles the agent.
                await asyncio.sleep(RETRY_BACKOFF_S)
                _, existing = await self._existing(room)
                created = existing or await self._gw.create_dispatch(self._agent_name, room,
                                                                     encoded)
            return self._result(created, existed, reused=False, wanted=metadata)

    async def _existing(self, room: str) -> tuple[bool, agent_dispatch.AgentDispatch | None]:
        # ListDispatch on a room that does not exist stalls ~3 s on a real server and then
        # fails, so ask ListRooms first: no room, no dispatch.
        if not await self._gw.list_rooms([room]):
            return False, None
        for d in await self._gw.list_dispatch(room):
            if d.agent_name == self._agent_name and not d.state.deleted_at:
                return True, d
        return True, None

    def _result(self, d: agent_dispatch.AgentDispatch, existed: bool, *, reused: bool,
                wanted: dict[str, Any]) -> DispatchResult:
        if reused:
            message = (f"agent {self._agent_name!r} is already dispatched to room {d.room!r}; "
                       "reused that dispatch")
            running = _letta_agent(d.metadata)
            asked = wanted.get(LETTA_AGENT_KEY, "")
            if asked and running != asked:
                message += f" (it runs Letta agent {running or 'default'!r}, not {asked!r})"
        else:
            message = f"agent {self._agent_name!r} dispatched to room {d.room!r}"
        return DispatchResult(room=d.room, dispatch_id=d.id, agent_name=d.agent_name,
                              room_existed=existed, reused=reused, message=message)


def _letta_agent(metadata: str) -> str:
    try:
        value = json.loads(metadata).get(LETTA_AGENT_KEY, "") if metadata else ""
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
