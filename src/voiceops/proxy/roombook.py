"""What the proxy knows about rooms, so a dispatch to a new room costs one LiveKit call.

Sources: the proxy's own dispatches, LiveKit's webhooks (room started/finished, agents
joining and leaving) and a periodic ``ListRooms`` made off the request path (:mod:`.roomsync`).
Pure state: no I/O, an injected monotonic clock.

The rule that keeps "two dispatches never make two agents": a room is answered from memory
only when the proxy itself made (or looked up) the dispatch in it; a room the book holds no
note for counts as new only once a full room list has been taken (``synced``), because every
room that existed before this process started is in that list, marked "ask LiveKit". Rooms
that others start later arrive by webhook, also marked "ask LiveKit". Anything uncertain
(a webhook from an earlier incarnation of the room, an agent of ours nobody here dispatched,
an old dispatch whose agent was never seen) falls back to asking LiveKit.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from livekit.protocol import agent_dispatch, models

AGENT_NAME_ATTRIBUTE = "lk.agent.name"
MAX_ROOMS = 100_000  # past this the book forgets everything and re-syncs (never guesses)
_NS_PER_S = 1_000_000_000
_AGENT = models.ParticipantInfo.Kind.AGENT
AGENT_LEFT = "its agent left the room"


class Action(enum.Enum):
    CREATE = "create"  # no dispatch of ours in the room: one CreateDispatch
    REUSE = "reuse"  # our dispatch has (or will soon have) its agent
    REPLACE = "replace"  # our dispatch's agent came and left: delete it, create anew
    LOOKUP = "lookup"  # not known for sure: ask LiveKit (ListRooms, ListDispatch, ...)


@dataclass(frozen=True)
class Plan:
    action: Action
    room_existed: bool = False
    dispatch: agent_dispatch.AgentDispatch | None = None  # REUSE: it; REPLACE: the stale one
    reason: str = ""


@dataclass
class RoomNote:
    sid: str = ""
    known: bool = False  # our dispatches in this room are exactly `dispatch` (or none)
    dispatch: agent_dispatch.AgentDispatch | None = None
    agents: set[str] = field(default_factory=set)  # our agents in the room now
    agent_seen: bool = False  # an agent of ours joined since `dispatch` was made
    touched_s: float = 0.0


class RoomBook:
    def __init__(self, agent_name: str, grace_s: float, *, max_rooms: int = MAX_ROOMS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._agent_name = agent_name
        self._grace_s = grace_s
        self._max = max_rooms
        self._clock = clock
        self._rooms: dict[str, RoomNote] = {}
        self._overflowed = False
        self.synced = False

    def __len__(self) -> int:
        return len(self._rooms)

    def note(self, room: str) -> RoomNote | None:
        return self._rooms.get(room)

    # -- the decision ------------------------------------------------------------------------
    def plan(self, room: str, now_ns: int) -> Plan:  # noqa: PLR0911 - a decision table, a row each
        """What to do for a dispatch to ``room`` (``now_ns``: wall clock, as LiveKit's)."""
        note = self._rooms.get(room)
        if note is None:
            return Plan(Action.CREATE) if self.synced else Plan(Action.LOOKUP)
        if not note.known:
            return Plan(Action.LOOKUP, room_existed=True)
        d = note.dispatch
        if d is None:
            return Plan(Action.CREATE, room_existed=True)
        if note.agents:
            return Plan(Action.REUSE, room_existed=True, dispatch=d)
        if note.agent_seen:
            return Plan(Action.REPLACE, room_existed=True, dispatch=d, reason=AGENT_LEFT)
        if now_ns - d.state.created_at < self._grace_s * _NS_PER_S:
            return Plan(Action.REUSE, room_existed=True, dispatch=d)  # its agent may still come
        return Plan(Action.LOOKUP, room_existed=True)  # no agent seen: maybe no webhooks here

    # -- what the proxy did ------------------------------------------------------------------
    def dispatched(self, room: str, d: agent_dispatch.AgentDispatch) -> None:
        """Our dispatch was created in ``room`` (the only one of ours there now)."""
        note = self._touch(room)
        note.known, note.dispatch, note.agent_seen = True, d, False

    def looked_up(self, room: str, live: agent_dispatch.AgentDispatch | None,
                  agents: Iterable[str]) -> None:
        """LiveKit's own answer: our live dispatch (None: there is none) and agents present."""
        note = self._touch(room)
        note.known, note.dispatch = True, live
        note.agents = set(agents) if live is not None else set()
        note.agent_seen = bool(note.agents)

    def forget(self, room: str) -> None:
        self._rooms.pop(room, None)

    # -- webhooks ------------------------------------------------------------------------------
    def room_started(self, room: models.Room) -> None:
        note = self._rooms.get(room.name)
        if note is None:  # started by someone else: whether our agent is in it is unknown
            self._touch(room.name).sid = room.sid
        elif not note.sid:
            note.sid = room.sid

    def room_finished(self, room: models.Room) -> None:
        note = self._rooms.get(room.name)
        if note is None or (note.sid and note.sid != room.sid):
            return  # an earlier incarnation of the room
        if note.sid or note.dispatch is None:
            del self._rooms[room.name]
        else:
            # Our dispatch's room sid is not known yet: this may be about an earlier
            # incarnation, so ask LiveKit next time rather than treat the room as new.
            note.known = False

    def agent_joined(self, room: models.Room, p: models.ParticipantInfo) -> None:
        if not self._ours(p):
            return
        note = self._rooms.get(room.name) or self._touch(room.name)
        note.touched_s = self._clock()
        if not note.sid:
            note.sid = room.sid
        if note.dispatch is None:
            note.known = False  # an agent of ours that this proxy did not dispatch
        note.agents.add(p.identity)
        note.agent_seen = True

    def agent_left(self, room: models.Room, p: models.ParticipantInfo) -> None:
        note = self._rooms.get(room.name)
        if note is not None and self._ours(p):
            note.agents.discard(p.identity)
            note.touched_s = self._clock()

    # -- the room list -------------------------------------------------------------------------
    def apply_room_list(self, rooms: Iterable[models.Room], asked_at_s: float) -> None:
        """A full ``ListRooms`` answer, asked at ``asked_at_s`` (this book's clock)."""
        listed = {r.name: r.sid for r in rooms}
        self._overflowed = False
        for name, note in list(self._rooms.items()):
            if name not in listed and note.touched_s < asked_at_s:
                del self._rooms[name]  # the room is gone, and with it every dispatch in it
        for name, sid in listed.items():
            current = self._rooms.get(name)
            if current is None:
                self._touch(name).sid = sid  # not ours (or from before this process): ask
            elif current.sid and current.sid != sid and current.touched_s < asked_at_s:
                current.sid, current.known = sid, False  # recreated since we learned about it
            elif not current.sid:
                current.sid = sid
        self.synced = not self._overflowed

    # -- internals -----------------------------------------------------------------------------
    def _ours(self, p: models.ParticipantInfo) -> bool:
        if p.kind != _AGENT:
            return False
        name = p.attributes.get(AGENT_NAME_ATTRIBUTE)
        return name is None or name == self._agent_name

    def _touch(self, room: str) -> RoomNote:
        note = self._rooms.get(room)
        if note is None:
            if len(self._rooms) >= self._max:
                self._rooms.clear()  # forgetting is safe (everything is asked); guessing is not
                self.synced, self._overflowed = False, True
            note = self._rooms[room] = RoomNote()
        note.touched_s = self._clock()
        return note
