"""The proxy's room book: answers from memory only where it knows for sure."""

from __future__ import annotations

from livekit.protocol import agent_dispatch, models

from voiceops.proxy.roombook import AGENT_NAME_ATTRIBUTE, Action, RoomBook

AGENT = "letta-voice-agent"
S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def book(max_rooms: int = 100) -> tuple[RoomBook, Clock]:
    clock = Clock()
    b = RoomBook(AGENT, grace_s=30.0, max_rooms=max_rooms, clock=clock)
    b.apply_room_list([], clock())
    return b, clock


def dispatch(room: str, created_s: int = 1000) -> agent_dispatch.AgentDispatch:
    return agent_dispatch.AgentDispatch(
        id=f"AD_{room}", room=room, agent_name=AGENT,
        state=agent_dispatch.AgentDispatchState(created_at=created_s * S))


def room(name: str, sid: str = "RM_1") -> models.Room:
    return models.Room(name=name, sid=sid)


def agent(identity: str = "agent-AJ_1", name: str = AGENT) -> models.ParticipantInfo:
    return models.ParticipantInfo(identity=identity, kind=models.ParticipantInfo.Kind.AGENT,
                                  attributes={AGENT_NAME_ATTRIBUTE: name})


def test_unknown_room_is_new_only_after_a_room_list() -> None:
    """Before the first room list every room is asked about; after it, an unseen room is new."""
    cold = RoomBook(AGENT, 30.0)
    assert cold.plan("r", 0).action is Action.LOOKUP
    cold.apply_room_list([room("old")], 0.0)
    assert cold.plan("r", 0).action is Action.CREATE
    assert cold.plan("old", 0).action is Action.LOOKUP  # existed before: its dispatches unknown


def test_own_dispatch_is_reused_within_the_grace_then_asked_about() -> None:
    """Our fresh dispatch is reused from memory; once old with no agent seen, LiveKit decides."""
    b, _ = book()
    b.dispatched("r", dispatch("r", created_s=1000))
    plan = b.plan("r", 1010 * S)
    assert plan.action is Action.REUSE and plan.dispatch is not None
    assert b.plan("r", 1031 * S).action is Action.LOOKUP


def test_agent_present_reuses_and_agent_gone_replaces() -> None:
    """Webhooks: our agent in the room means reuse; after it left, the dispatch is replaced."""
    b, _ = book()
    b.dispatched("r", dispatch("r"))
    b.agent_joined(room("r"), agent())
    assert b.plan("r", 5000 * S).action is Action.REUSE
    b.agent_left(room("r"), agent())
    plan = b.plan("r", 1001 * S)
    assert plan.action is Action.REPLACE and plan.reason == "its agent left the room"


def test_rooms_started_by_others_and_foreign_agents_are_asked_about() -> None:
    """A room someone else started, or one of our agents we did not dispatch: ask LiveKit."""
    b, _ = book()
    b.room_started(room("browser-room"))
    assert b.plan("browser-room", 0).action is Action.LOOKUP
    b.looked_up("browser-room", None, ())
    assert b.plan("browser-room", 0).action is Action.CREATE
    b.agent_joined(room("browser-room"), agent())  # dispatched by someone else
    assert b.plan("browser-room", 0).action is Action.LOOKUP
    b.agent_joined(room("x"), agent(name="other-agent"))
    assert b.note("x") is None  # not our agent: nothing learned


def test_room_finished_of_an_earlier_incarnation_never_makes_a_room_new() -> None:
    """room_finished for another sid is ignored; with our sid unknown the room is asked about."""
    b, _ = book()
    b.dispatched("r", dispatch("r"))
    b.room_finished(room("r", sid="RM_old"))  # our room's sid is not known yet
    assert b.plan("r", 1000 * S).action is Action.LOOKUP
    b.looked_up("r", dispatch("r"), ())
    b.room_started(room("r", sid="RM_new"))
    b.room_finished(room("r", sid="RM_old"))
    assert b.plan("r", 1000 * S).action is Action.REUSE
    b.room_finished(room("r", sid="RM_new"))
    assert b.note("r") is None and b.plan("r", 0).action is Action.CREATE


def test_room_list_drops_gone_rooms_but_not_newer_notes() -> None:
    """A room missing from the list is forgotten unless it was touched after the list was asked."""
    b, clock = book()
    b.dispatched("gone", dispatch("gone"))
    clock.now += 1
    asked = clock.now
    clock.now += 1
    b.dispatched("new", dispatch("new"))
    b.apply_room_list([], asked)
    assert b.note("gone") is None and b.note("new") is not None


def test_overflow_forgets_everything_and_stops_guessing() -> None:
    """Past max_rooms the book forgets and is unsynced: every room is asked about again."""
    b, _ = book(max_rooms=2)
    b.dispatched("a", dispatch("a"))
    b.dispatched("b", dispatch("b"))
    b.dispatched("c", dispatch("c"))
    assert not b.synced and b.note("a") is None
    assert b.plan("a", 1000 * S).action is Action.LOOKUP
