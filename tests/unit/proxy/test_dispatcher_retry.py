"""The dispatcher's one retry of CreateDispatch after a transport error never doubles the agent."""

from __future__ import annotations

import time
from typing import Any

import pytest
from livekit.protocol import agent_dispatch, models

from voiceops.proxy.dispatcher import Dispatcher
from voiceops.proxy.errors import ApiError

AGENT = "voice"


class FlakyGateway:
    """A stand-in for LiveKitGateway whose first CreateDispatch fails as configured."""

    def __init__(self, failure: ApiError, *, lands_anyway: bool) -> None:
        self.failure = failure
        self.lands_anyway = lands_anyway  # the lost request had reached LiveKit
        self.dispatches: list[agent_dispatch.AgentDispatch] = []
        self.creates = 0

    async def list_rooms(self, names: list[str], **_: Any) -> list[models.Room]:
        return [models.Room(name=n) for n in names] if self.dispatches else []

    async def list_dispatch(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        return list(self.dispatches)

    async def create_dispatch(self, agent_name: str, room: str,
                              metadata: str) -> agent_dispatch.AgentDispatch:
        self.creates += 1
        made = agent_dispatch.AgentDispatch(
            id=f"AD_{self.creates}", agent_name=agent_name, room=room, metadata=metadata,
            state=agent_dispatch.AgentDispatchState(created_at=time.time_ns()))  # as LiveKit does
        if self.creates == 1:
            if self.lands_anyway:
                self.dispatches.append(made)
            raise self.failure
        self.dispatches.append(made)
        return made


UNREACHABLE = ApiError(503, "livekit_unreachable", "LiveKit unreachable at x")


async def test_lost_answer_is_found_not_created_twice():
    """If the failed create reached LiveKit, the retry finds that dispatch instead of a second."""
    gw = FlakyGateway(UNREACHABLE, lands_anyway=True)
    result = await Dispatcher(gw, AGENT).dispatch("r", {})  # type: ignore[arg-type]
    assert gw.creates == 1 and result.dispatch_id == "AD_1" and not result.reused


async def test_lost_request_is_retried_once():
    """If the failed create never reached LiveKit, it is sent once more."""
    gw = FlakyGateway(UNREACHABLE, lands_anyway=False)
    result = await Dispatcher(gw, AGENT).dispatch("r", {})  # type: ignore[arg-type]
    assert gw.creates == 2 and result.dispatch_id == "AD_2"


async def test_other_errors_are_not_retried():
    """A LiveKit answer (not a transport error) is final."""
    gw = FlakyGateway(ApiError(502, "livekit_error", "no"), lands_anyway=False)
    with pytest.raises(ApiError) as info:
        await Dispatcher(gw, AGENT).dispatch("r", {})  # type: ignore[arg-type]
    assert info.value.code == "livekit_error" and gw.creates == 1
