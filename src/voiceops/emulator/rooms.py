"""Rooms and dispatches: creation (CreateRoom, CreateDispatch, first join), deletion, reaping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from livekit.protocol import agent_dispatch, models
from livekit.protocol import rtc as rtc_pb

from .dispatcher import Dispatcher
from .options import EmulatorOptions
from .state import Participant, ParticipantState, Room, room_should_close
from .tokens import new_id
from .webhooks import WebhookNotifier
from .workers import WorkerRegistry

logger = logging.getLogger("voiceops.emulator.rooms")


class TwirpFailure(Exception):
    """A Twirp error to return: code (e.g. "not_found") and message."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class RoomSpec:
    """What a new room is created with (CreateRoom fields, or a join token's roomConfig)."""

    name: str
    empty_timeout_s: int = 0
    departure_timeout_s: int = 0
    max_participants: int = 0
    metadata: str = ""
    agents: tuple[agent_dispatch.RoomAgentDispatch, ...] = ()


class RoomManager:
    def __init__(
        self,
        options: EmulatorOptions,
        dispatcher: Dispatcher,
        webhooks: WebhookNotifier,
        clock: Callable[[], float] = time.time,
        workers: WorkerRegistry | None = None,
    ) -> None:
        self._options = options
        self._dispatcher = dispatcher
        self._workers = workers or WorkerRegistry()
        self._tasks: set[asyncio.Task[None]] = set()
        self.webhooks = webhooks
        self._clock = clock
        # Set by the hub: takes a leaving participant's tracks down (every removal path).
        self.on_participant_removed: Callable[[Room, Participant], None] | None = None
        self.rooms: dict[str, Room] = {}
        self._reaper: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_loop(), name="room-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
            self._reaper = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._options.room_reaper_interval_s)
            now = self._clock()
            for room in [r for r in self.rooms.values() if room_should_close(r, now)]:
                logger.info("room_closing room_sid=%s reason=empty_timeout", room.sid)
                await self.delete_room(room.name, "ROOM_CLOSED")

    # -- rooms -----------------------------------------------------------------------------
    def get_or_create(self, spec: RoomSpec) -> tuple[Room, bool]:
        """The room named spec.name, created (with its dispatches launched) when missing."""
        room = self.rooms.get(spec.name)
        if room is not None:
            return room, False
        room = Room(
            sid=new_id("RM_"),
            name=spec.name,
            created_at_s=self._clock(),
            empty_timeout_s=spec.empty_timeout_s or self._options.empty_timeout_s,
            departure_timeout_s=spec.departure_timeout_s or self._options.departure_timeout_s,
            max_participants=spec.max_participants,
            metadata=spec.metadata,
        )
        self.rooms[spec.name] = room
        logger.info("room_created room_sid=%s", room.sid)
        self.webhooks.emit("room_started", room.to_proto())
        # Go createAgentDispatchesFromRoomAgent: no configured agents -> one unnamed dispatch,
        # which only unnamed workers receive. Named workers need an explicit dispatch.
        for spec_agent in spec.agents or (agent_dispatch.RoomAgentDispatch(),):
            self._add_dispatch(room, spec_agent.agent_name, spec_agent.metadata)
        return room, True

    async def delete_room(self, name: str, reason: str = "ROOM_DELETED") -> None:
        room = self.rooms.pop(name, None)
        if room is None:
            raise TwirpFailure("not_found", "room not found")
        room.closed = True
        now_ns = int(self._clock() * 1e9)
        for dispatch in room.dispatches.values():
            dispatch.state.deleted_at = now_ns  # a job assigned after this is terminated at once
            await self._dispatcher.terminate_jobs(dispatch)
        for participant in list(room.participants.values()):
            await self.remove_participant(room, participant.identity, reason)
        self.webhooks.emit("room_finished", room.to_proto())
        logger.info("room_finished room_sid=%s", room.sid)

    def list_rooms(self, names: Iterable[str]) -> list[models.Room]:
        wanted = set(names)
        return [r.to_proto() for r in self.rooms.values() if not wanted or r.name in wanted]

    def list_participants(self, name: str) -> list[models.ParticipantInfo]:
        room = self.rooms.get(name)
        return [] if room is None else [p.to_proto() for p in room.participants.values()]

    # -- dispatches ------------------------------------------------------------------------
    def _add_dispatch(
        self, room: Room, agent_name: str, metadata: str, attributes: dict[str, str] | None = None
    ) -> agent_dispatch.AgentDispatch:
        dispatch = agent_dispatch.AgentDispatch(
            id=new_id("AD_"),
            agent_name=agent_name,
            room=room.name,
            metadata=metadata,
            attributes=attributes or {},
            state=agent_dispatch.AgentDispatchState(created_at=int(self._clock() * 1e9)),
        )
        room.dispatches[dispatch.id] = dispatch
        self._dispatcher.launch(room.to_proto(), dispatch)
        return dispatch

    def create_dispatch(
        self, req: agent_dispatch.CreateAgentDispatchRequest
    ) -> agent_dispatch.AgentDispatch:
        if not req.room:
            raise TwirpFailure("invalid_argument", "room is required")
        room, _ = self.get_or_create(RoomSpec(name=req.room))
        dispatch = self._add_dispatch(room, req.agent_name, req.metadata, dict(req.attributes))
        logger.info(
            "dispatch_created dispatch_id=%s agent_name=%r room_sid=%s", dispatch.id,
            req.agent_name, room.sid
        )
        return dispatch

    def list_dispatch(self, room_name: str, dispatch_id: str) -> list[agent_dispatch.AgentDispatch]:
        room = self.rooms.get(room_name)
        if room is None:
            # Go: the RPC to the room's node times out and psrpc answers "no response from servers".
            raise TwirpFailure("unavailable", "no response from servers")
        return [d for d in room.dispatches.values() if not dispatch_id or d.id == dispatch_id]

    async def delete_dispatch(
        self, room_name: str, dispatch_id: str
    ) -> agent_dispatch.AgentDispatch:
        room = self.rooms.get(room_name)
        if room is None:
            raise TwirpFailure("unavailable", "no response from servers")
        dispatch = room.dispatches.pop(dispatch_id, None)
        if dispatch is None:
            raise TwirpFailure("not_found", "dispatch ID not found")
        dispatch.state.deleted_at = int(self._clock() * 1e9)
        # Go answers at once and ends the jobs in the background (Room.DeleteAgentDispatch).
        self._spawn(self._end_deleted_dispatch(room, dispatch), f"delete:{dispatch_id}")
        return dispatch

    async def _end_deleted_dispatch(
        self, room: Room, dispatch: agent_dispatch.AgentDispatch
    ) -> None:
        """Terminate each job (JS_SUCCESS); an agent still in the room after the wait is removed."""
        await self._dispatcher.wait_launched(dispatch.id)
        for job in list(dispatch.state.jobs):
            record = await self._dispatcher.terminate_job(job.id, left_room=False)
            if record is None:
                continue
            job.state.status = record.status
            job.state.ended_at = int(self._clock() * 1e9)
            identity = record.participant_identity
            if identity not in room.participants:
                continue
            if not await self._left(room, identity, self._options.agent_leave_wait_s):
                logger.info("agent_overstayed waited_s=%.0f", self._options.agent_leave_wait_s)
                await self.remove_participant(
                    room, identity, "SERVICE_REQUEST_REMOVE_PARTICIPANT", notify_others=True
                )

    async def _left(self, room: Room, identity: str, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while identity in room.participants and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return identity not in room.participants

    # -- participants (used by the RtcHub) -------------------------------------------------
    async def remove_participant(
        self, room: Room, identity: str, reason: str, *, notify_others: bool = False
    ) -> None:
        participant = room.participants.pop(identity, None)
        if participant is None:
            return
        if self.on_participant_removed is not None:
            self.on_participant_removed(room, participant)
        was_active = participant.state == ParticipantState.ACTIVE
        participant.transition(ParticipantState.DISCONNECTED)
        room.last_left_at_s = self._clock()
        self._end_agent_job(room, identity)
        if participant.sink is not None and reason:
            try:
                await participant.sink.close(reason)
            except Exception:  # a dead socket must not stop the removal of the others
                logger.exception("participant_close_failed room_sid=%s", room.sid)
        # Go: only a participant that became ACTIVE (and so had participant_joined) "left".
        event = "participant_left" if was_active else "participant_connection_aborted"
        self.webhooks.emit(event, room.to_proto(), participant.to_proto())
        if notify_others:
            await self._announce_left(room, participant.to_proto())
        logger.info("participant_left room_sid=%s reason=%s", room.sid, reason or "leave")

    def _end_agent_job(self, room: Room, identity: str) -> None:
        """Go's Room.RemoveParticipant: the agent of a running job left, so the job is over."""
        found = self._workers.find_by_identity(room.name, identity)
        if found is None:
            return
        _, record = found
        self._spawn(
            self._terminate_left(record.job_id), f"agent-left:{record.job_id}"
        )

    async def _terminate_left(self, job_id: str) -> None:
        await self._dispatcher.terminate_job(job_id, left_room=True)

    async def _announce_left(self, room: Room, info: models.ParticipantInfo) -> None:
        update = rtc_pb.SignalResponse(update=rtc_pb.ParticipantUpdate(participants=[info]))
        for other in list(room.participants.values()):
            if other.sink is None:
                continue
            try:
                await other.sink.send(update)
            except Exception:  # one broken socket must not starve the others
                logger.exception("participant_update_failed")
