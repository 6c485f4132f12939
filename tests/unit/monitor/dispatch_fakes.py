"""Fake collaborators for :class:`voiceops.monitor.dispatches.Dispatches`: a clock, an alert
book that records every fire/resolve, a LiveKit AgentDispatch service and the facts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from livekit import api
from prometheus_client import CollectorRegistry

from voiceops.metrics import Metrics
from voiceops.monitor import diagnose
from voiceops.monitor.correlate import CorrelateOptions
from voiceops.monitor.dispatches import Dispatches, DispatchOptions

AGENT = "letta-voice-agent"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Alerts:
    """fire/resolve as the monitor's alert book sees them; waits are event-driven."""

    def __init__(self) -> None:
        self.firing: dict[str, tuple[str, dict[str, str]]] = {}
        self.calls: list[tuple[str, str]] = []  # ("fire" | "resolve", alert name)
        self._changed = asyncio.Event()

    def fire(self, name: str, diagnosis: str, labels: dict[str, str] | None = None) -> None:
        self.firing[name] = (diagnosis, dict(labels or {}))
        self.calls.append(("fire", name))
        self._changed.set()

    def resolve(self, name: str) -> None:
        self.firing.pop(name, None)
        self.calls.append(("resolve", name))
        self._changed.set()

    async def wait(self, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()


class FakeLiveKit:
    """ListDispatch / DeleteDispatch / CreateDispatch over an in-memory room → dispatches map."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[api.AgentDispatch]] = {}
        self.fail_list = False
        self.calls: list[str] = []

    def add(self, dispatch_id: str, room: str, *jobs: str, metadata: str = "") -> None:
        state = api.AgentDispatchState(jobs=[api.Job(id=j) for j in jobs])
        self.rooms.setdefault(room, []).append(api.AgentDispatch(
            id=dispatch_id, room=room, agent_name=AGENT, metadata=metadata, state=state))

    async def list_dispatch(self, room_name: str) -> list[api.AgentDispatch]:
        self.calls.append("list")
        if self.fail_list:
            raise ConnectionError("LiveKit is down")
        return list(self.rooms.get(room_name, []))

    async def delete_dispatch(self, dispatch_id: str, room_name: str) -> api.AgentDispatch:
        self.calls.append(f"delete {dispatch_id}")
        mine = [d for d in self.rooms.get(room_name, []) if d.id == dispatch_id]
        self.rooms[room_name] = [d for d in self.rooms.get(room_name, []) if d.id != dispatch_id]
        return mine[0]

    async def create_dispatch(self, req: api.CreateAgentDispatchRequest) -> api.AgentDispatch:
        new_id = f"AD_new{len(self.calls)}"
        self.calls.append(f"create {req.agent_name} {req.metadata}")
        self.add(new_id, req.room, metadata=req.metadata)
        return self.rooms[req.room][-1]


async def no_wait(max_wait_s: float) -> None:
    """wait_pool_ready: the pool is ready at once."""


def make_dispatches(clock: Clock, alerts: Alerts, livekit: FakeLiveKit, *,
                    metrics: Metrics | None = None, redispatch: bool = False) -> Dispatches:
    facts_asked: list[dict[str, Any]] = []

    async def facts(*, joins_missing: bool = False,
                    listing: diagnose.Listing | None = None) -> diagnose.Facts:
        facts_asked.append({"joins_missing": joins_missing, "listing": listing})
        return diagnose.Facts(agent_name=AGENT, livekit_url="ws://livekit.test",
                              joins_missing=joins_missing, listing=listing)

    options = DispatchOptions(CorrelateOptions(deadline_s=10.0, redispatch=redispatch,
                                               join_timeout_s=120.0, linger_s=30.0),
                              livekit_timeout_s=1.0)
    return Dispatches(metrics or Metrics(AGENT, CollectorRegistry()), options,
                      alerts=alerts, livekit=lambda: livekit,
                      facts=facts, wait_pool_ready=no_wait, clock=clock)
