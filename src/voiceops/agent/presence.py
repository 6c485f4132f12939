"""Stay or leave: an agent stays while a caller is in its room, and leaves when none is.

One state machine (:class:`Presence`, one transition table) shared by every agent the pool
runs, so the rule for an empty room is the same whatever the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from enum import Enum, StrEnum
from typing import Final

from livekit import rtc

from voiceops.worker.drainflag import worker_draining

NO_HUMAN_TIMEOUT_ENV: Final = "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S"
DEFAULT_NO_HUMAN_TIMEOUT_S: Final = 60.0
# While nobody has come yet, how often to look whether the worker began to drain.
DRAIN_CHECK_S: Final = 0.5


class Presence(StrEnum):
    WAITING = "waiting"  # connected, nobody else here yet
    ATTENDED = "attended"  # at least one non-agent participant
    DONE = "done"


class Seen(Enum):
    HUMANS = "humans"
    NOBODY = "nobody"
    TIMED_OUT = "timed_out"  # the wait for a first participant is over
    ROOM_CLOSED = "room_closed"
    WORKER_DRAINING = "worker_draining"  # nobody will be sent here any more


_TRANSITIONS: Final[dict[tuple[Presence, Seen], Presence]] = {
    (Presence.WAITING, Seen.HUMANS): Presence.ATTENDED,
    (Presence.WAITING, Seen.NOBODY): Presence.WAITING,
    (Presence.WAITING, Seen.TIMED_OUT): Presence.DONE,
    (Presence.WAITING, Seen.ROOM_CLOSED): Presence.DONE,
    (Presence.WAITING, Seen.WORKER_DRAINING): Presence.DONE,  # an empty room holds no call
    (Presence.ATTENDED, Seen.HUMANS): Presence.ATTENDED,
    (Presence.ATTENDED, Seen.NOBODY): Presence.DONE,
    (Presence.ATTENDED, Seen.TIMED_OUT): Presence.ATTENDED,
    (Presence.ATTENDED, Seen.ROOM_CLOSED): Presence.DONE,
    (Presence.ATTENDED, Seen.WORKER_DRAINING): Presence.ATTENDED,  # a live call finishes
}


def next_presence(state: Presence, seen: Seen) -> Presence:
    """One step of the stay-or-leave state machine (DONE is final)."""
    if state is Presence.DONE:
        return Presence.DONE
    return _TRANSITIONS[(state, seen)]


def no_human_timeout_s(env: dict[str, str] | os._Environ[str] = os.environ) -> float:
    raw = env.get(NO_HUMAN_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_NO_HUMAN_TIMEOUT_S
    except ValueError:
        value = DEFAULT_NO_HUMAN_TIMEOUT_S
    return value if value > 0 else DEFAULT_NO_HUMAN_TIMEOUT_S


def humans_in(room: rtc.Room) -> int:
    agent = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    return sum(1 for p in room.remote_participants.values() if p.kind != agent)


async def stay_while_attended(room: rtc.Room, timeout_s: float) -> str:
    """Return (with the reason) once nobody but agents is left, or nobody came in time."""
    changed = asyncio.Event()

    def on_change(*_: object) -> None:
        changed.set()

    room.on("participant_connected", on_change)
    room.on("participant_disconnected", on_change)
    room.on("disconnected", on_change)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    state, seen = Presence.WAITING, Seen.NOBODY
    try:
        while True:
            changed.clear()  # before observing, so a change during the check is not lost
            seen = _observe(room, loop.time() >= deadline)
            state = next_presence(state, seen)
            if state is Presence.DONE:
                break
            wait_s = (min(max(deadline - loop.time(), 0.0), DRAIN_CHECK_S)
                      if state is Presence.WAITING else None)
            with contextlib.suppress(TimeoutError):  # the next observation sees the deadline
                await asyncio.wait_for(changed.wait(), wait_s)
    finally:
        room.off("participant_connected", on_change)
        room.off("participant_disconnected", on_change)
        room.off("disconnected", on_change)
    return f"voiceops agent: {seen.value}"


def _observe(room: rtc.Room, past_deadline: bool) -> Seen:
    if not room.isconnected():
        return Seen.ROOM_CLOSED
    if humans_in(room):
        return Seen.HUMANS
    if worker_draining():
        return Seen.WORKER_DRAINING
    return Seen.TIMED_OUT if past_deadline else Seen.NOBODY
