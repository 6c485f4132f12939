"""Find-or-create one dispatch of our agent per room: no aiohttp here, only the LiveKit gateway.

Two browsers (or one double-click) asking for the same room must not create two agents, so
the whole look-then-create sequence runs under a per-room lock. A dispatch whose agent is gone
(see :mod:`.liveness`) is not reused: it is deleted and replaced, or the browser would wait
for an agent that never comes. The look is answered from the proxy's :class:`.RoomBook` where
it knows for sure (a new room: one ``CreateDispatch``, nothing else), else from LiveKit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from livekit.protocol import agent_dispatch

from .errors import ApiError
from .livekit_gateway import RETRY_BACKOFF_S, LiveKitGateway
from .liveness import DISPATCH_GRACE_S, agent_identities, dispatch_is_live, stale_reason
from .roombook import Action, RoomBook
from .validation import LETTA_AGENT_KEY

logger = logging.getLogger("voiceops.proxy.dispatch")
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


@dataclass(frozen=True)
class Lookup:
    """What the room holds of our agent: a dispatch to reuse, and dispatches to replace."""

    room_existed: bool
    live: agent_dispatch.AgentDispatch | None = None
    stale: tuple[agent_dispatch.AgentDispatch, ...] = ()
    agents: frozenset[str] = frozenset()  # the live dispatch's agents now in the room


class Dispatcher:
    def __init__(self, gateway: LiveKitGateway, agent_name: str, *,
                 grace_s: float = DISPATCH_GRACE_S,
                 wall_clock_ns: Callable[[], int] = time.time_ns,
                 book: RoomBook | None = None) -> None:
        self._gw = gateway
        self.book = book if book is not None else RoomBook(agent_name, grace_s)
        self._agent_name = agent_name
        self._grace_s = grace_s
        # Wall clock, not monotonic: it is compared with LiveKit's own timestamps.
        self._now_ns = wall_clock_ns
        self._locks = KeyedLocks()

    async def dispatch(self, room: str, metadata: dict[str, Any]) -> DispatchResult:
        async with self._locks.hold(room):
            plan = self.book.plan(room, self._now_ns())
            if plan.action is Action.REUSE and plan.dispatch is not None:
                return self._result(plan.dispatch, True, reused=True, wanted=metadata)
            stale: tuple[tuple[agent_dispatch.AgentDispatch, str], ...] = ()
            existed = plan.room_existed
            if plan.action is Action.REPLACE and plan.dispatch is not None:
                stale = ((plan.dispatch, plan.reason),)
            elif plan.action is Action.LOOKUP:
                found = await self._look(room)
                self.book.looked_up(room, found.live, found.agents)
                if found.live is not None:
                    return self._result(found.live, found.room_existed, reused=True,
                                        wanted=metadata)
                stale = tuple((d, stale_reason(d)) for d in found.stale)
                existed = found.room_existed
            await self._delete_stale(stale)
            created = await self._create(room, metadata)
            self.book.dispatched(room, created)
            return self._result(created, existed, reused=False, wanted=metadata, replaced=stale)

    async def _create(self, room: str, metadata: dict[str, Any]) -> agent_dispatch.AgentDispatch:
        encoded = json.dumps(metadata, separators=(",", ":")) if metadata else ""
        try:
            return await self._gw.create_dispatch(self._agent_name, room, encoded)
        except ApiError as exc:
            if exc.code != UNREACHABLE:
                raise
        # The request may have reached LiveKit before the connection broke: look before
        # trying once more, so a retry never doubles the agent.
        await asyncio.sleep(RETRY_BACKOFF_S)
        existing = (await self._look(room)).live
        return existing or await self._gw.create_dispatch(self._agent_name, room, encoded)

    async def _look(self, room: str) -> Lookup:
        # ListDispatch on a room that does not exist stalls ~3 s on a real server and then
        # fails, so ask ListRooms first: no room, no dispatch.
        if not await self._gw.list_rooms([room]):
            return Lookup(room_existed=False)
        ours = [d for d in await self._gw.list_dispatch(room)
                if d.agent_name == self._agent_name and not d.state.deleted_at]
        agents: set[str] = set()
        if any(d.state.jobs for d in ours):  # a dispatch without jobs is judged by age alone
            agents = agent_identities(await self._gw.list_participants(room))
        now_ns = self._now_ns()
        live: list[agent_dispatch.AgentDispatch] = []
        stale: list[agent_dispatch.AgentDispatch] = []
        for d in ours:
            (live if dispatch_is_live(d, agents, now_ns, self._grace_s) else stale).append(d)
        chosen = live[0] if live else None
        present = frozenset(j.state.participant_identity for j in chosen.state.jobs
                            if j.state.participant_identity in agents) if chosen else frozenset()
        return Lookup(room_existed=True, live=chosen, stale=tuple(stale), agents=present)

    async def _delete_stale(self, stale: tuple[tuple[agent_dispatch.AgentDispatch, str], ...]
                            ) -> None:
        """Best effort: a stale dispatch left behind only costs a list entry, never an agent."""
        for d, reason in stale:
            try:
                await self._gw.delete_dispatch(d.id, d.room)
            except ApiError as exc:
                logger.warning("stale_dispatch_delete_failed dispatch_id=%s agent_name=%s "
                               "stale_reason=%s jobs=%d error=%s", d.id, d.agent_name, reason,
                               len(d.state.jobs), exc.code)
                continue
            logger.info("stale_dispatch_deleted dispatch_id=%s agent_name=%s stale_reason=%s "
                        "jobs=%d", d.id, d.agent_name, reason, len(d.state.jobs))

    def _result(self, d: agent_dispatch.AgentDispatch, existed: bool, *, reused: bool,
                wanted: dict[str, Any],
                replaced: tuple[tuple[agent_dispatch.AgentDispatch, str], ...] = ()
                ) -> DispatchResult:
        if reused:
            message = (f"agent {self._agent_name!r} is already dispatched to room {d.room!r}; "
                       "reused that dispatch")
            running = _letta_agent(d.metadata)
            asked = wanted.get(LETTA_AGENT_KEY, "")
            if asked and running != asked:
                message += f" (it runs Letta agent {running or 'default'!r}, not {asked!r})"
        else:
            message = f"agent {self._agent_name!r} dispatched to room {d.room!r}"
            message += "".join(f"; replaced stale dispatch {old.id} ({reason})"
                               for old, reason in replaced)
        return DispatchResult(room=d.room, dispatch_id=d.id, agent_name=d.agent_name,
                              room_existed=existed, reused=reused, message=message)


def _letta_agent(metadata: str) -> str:
    try:
        value = json.loads(metadata).get(LETTA_AGENT_KEY, "") if metadata else ""
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
