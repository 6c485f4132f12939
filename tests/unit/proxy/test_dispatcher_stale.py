"""The dispatcher reuses a live dispatch but deletes and replaces a stale one."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.protocol import agent, agent_dispatch, models

from voiceops.proxy.dispatcher import Dispatcher
from voiceops.proxy.errors import ApiError
from voiceops.proxy.logs import event_and_fields

AGENT = "voice"
S = 1_000_000_000
NOW = 1_700_000_000 * S


class RoomGateway:
    """An in-memory LiveKitGateway for one existing room; records the calls it gets."""

    def __init__(self, dispatches: list[agent_dispatch.AgentDispatch],
                 participants: list[models.ParticipantInfo] = (),  # type: ignore[assignment]
                 delete_error: ApiError | None = None) -> None:
        self.dispatches = list(dispatches)
        self.participants = list(participants)
        self.delete_error = delete_error
        self.calls: list[str] = []

    async def list_rooms(self, names: list[str], **_: Any) -> list[models.Room]:
        return [models.Room(name=n) for n in names]

    async def list_dispatch(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        self.calls.append("list_dispatch")
        return list(self.dispatches)

    async def list_participants(self, room: str) -> list[models.ParticipantInfo]:
        self.calls.append("list_participants")
        return list(self.participants)

    async def delete_dispatch(self, dispatch_id: str, room: str) -> None:
        self.calls.append(f"delete {dispatch_id}")
        if self.delete_error is not None:
            raise self.delete_error
        self.dispatches = [d for d in self.dispatches if d.id != dispatch_id]

    async def create_dispatch(self, agent_name: str, room: str,
                              metadata: str) -> agent_dispatch.AgentDispatch:
        self.calls.append("create")
        made = agent_dispatch.AgentDispatch(
            id="AD_new", agent_name=agent_name, room=room,
            state=agent_dispatch.AgentDispatchState(created_at=NOW))
        self.dispatches.append(made)
        return made


def old_dispatch(dispatch_id: str, *identities: str, agent_name: str = AGENT,
                 age_s: int = 600) -> agent_dispatch.AgentDispatch:
    jobs = [agent.Job(id=f"AJ_{i}", state=agent.JobState(
        status=agent.JS_RUNNING, participant_identity=i, started_at=NOW - age_s * S))
        for i in identities]
    return agent_dispatch.AgentDispatch(
        id=dispatch_id, agent_name=agent_name, room="r",
        state=agent_dispatch.AgentDispatchState(created_at=NOW - age_s * S, jobs=jobs))


def agent_in_room(identity: str) -> models.ParticipantInfo:
    return models.ParticipantInfo(identity=identity, kind=models.ParticipantInfo.Kind.AGENT,
                                  state=models.ParticipantInfo.State.ACTIVE)


def dispatcher(gw: RoomGateway) -> Dispatcher:
    return Dispatcher(gw, AGENT, grace_s=30.0, wall_clock_ns=lambda: NOW)  # type: ignore[arg-type]


async def test_old_dispatch_without_job_is_replaced_without_asking_for_participants():
    """A job-less dispatch older than the grace is deleted and replaced; no ListParticipants."""
    gw = RoomGateway([old_dispatch("AD_old")])
    result = await dispatcher(gw).dispatch("r", {})
    assert gw.calls == ["list_dispatch", "delete AD_old", "create"]
    assert result.dispatch_id == "AD_new" and not result.reused and result.room_existed
    assert "replaced stale dispatch AD_old (no worker ever took its job)" in result.message


async def test_dispatch_whose_agent_is_in_the_room_is_reused():
    """A dispatch whose job's agent participant is present is reused, however old."""
    gw = RoomGateway([old_dispatch("AD_old", "agent-1")], [agent_in_room("agent-1")])
    result = await dispatcher(gw).dispatch("r", {})
    assert gw.calls == ["list_dispatch", "list_participants"]
    assert result.dispatch_id == "AD_old" and result.reused


async def test_dispatch_whose_agent_left_is_replaced_and_other_agents_are_untouched():
    """Our dispatch whose agent left is replaced; another agent's dispatch is left alone."""
    gw = RoomGateway([old_dispatch("AD_theirs", "x", agent_name="other"),
                      old_dispatch("AD_old", "agent-1")], [agent_in_room("x")])
    result = await dispatcher(gw).dispatch("r", {})
    assert gw.calls == ["list_dispatch", "list_participants", "delete AD_old", "create"]
    assert "replaced stale dispatch AD_old (its agent left the room)" in result.message
    assert {d.id for d in gw.dispatches} == {"AD_theirs", "AD_new"}


async def test_failed_delete_is_logged_and_a_new_dispatch_still_made(
        caplog: pytest.LogCaptureFixture):
    """A stale dispatch that cannot be deleted does not stop the new dispatch (best effort)."""
    gw = RoomGateway([old_dispatch("AD_old")],
                     delete_error=ApiError(502, "livekit_error", "no"))
    result = await dispatcher(gw).dispatch("r", {})
    assert result.dispatch_id == "AD_new" and not result.reused
    logged = [event_and_fields(r) for r in caplog.records]
    failed = [fields for event, fields in logged if event == "stale_dispatch_delete_failed"]
    assert failed and failed[0]["dispatch_id"] == "AD_old"
    assert failed[0]["error"] == "livekit_error"
