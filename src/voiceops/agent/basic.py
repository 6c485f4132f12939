"""The placeholder agent: joins the room, stays while someone is there, leaves.

It stands in for the Letta voice pipeline (a later issue replaces it) and keeps the dispatch
path honest meanwhile: it reads ``letta_agent_id`` from the dispatch metadata, connects (so
the worker reports ``agent_joined``), and ends the job when the last non-agent participant
has left, the room closed, or nobody joined within ``VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from enum import Enum, StrEnum
from typing import Final

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext

from voiceops.worker.probe import parse_metadata

logger = logging.getLogger("voiceops.agent")

NO_HUMAN_TIMEOUT_ENV: Final = "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S"
DEFAULT_NO_HUMAN_TIMEOUT_S: Final = 60.0


class Presence(StrEnum):
    WAITING = "waiting"  # connected, nobody else here yet
    ATTENDED = "attended"  # at least one non-agent participant
    DONE = "done"


class Seen(Enum):
    HUMANS = "humans"
    NOBODY = "nobody"
    TIMED_OUT = "timed_out"  # the wait for a first participant is over
    ROOM_CLOSED = "room_closed"


_TRANSITIONS: Final[dict[tuple[Presence, Seen], Presence]] = {
    (Presence.WAITING, Seen.HUMANS): Presence.ATTENDED,
    (Presence.WAITING, Seen.NOBODY): Presence.WAITING,
    (Presence.WAITING, Seen.TIMED_OUT): Presence.DONE,
    (Presence.WAITING, Seen.ROOM_CLOSED): Presence.DONE,
    (Presence.ATTENDED, Seen.HUMANS): Presence.ATTENDED,
    (Presence.ATTENDED, Seen.NOBODY): Presence.DONE,
    (Presence.ATTENDED, Seen.TIMED_OUT): Presence.ATTENDED,
    (Presence.ATTENDED, Seen.ROOM_CLOSED): Presence.DONE,
}


def next_presence(state: Presence, seen: Seen) -> Presence:
    """One step of the stay-or-leave state machine (DONE is final)."""
    if state is Presence.DONE:
        return Presence.DONE
    return _TRANSITIONS[(state, seen)]


def letta_agent_id(metadata: str) -> str:
    """``letta_agent_id`` from the dispatch metadata; "" when absent or malformed."""
    value = parse_metadata(metadata).get("letta_agent_id", "")
    return value if isinstance(value, str) else ""


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


async def entrypoint(ctx: JobContext) -> None:
    """Default ``workers.entrypoint`` until the Letta voice pipeline lands."""
    agent_id = letta_agent_id(ctx.job.metadata)
    logger.info("agent starting", extra={"job_id": ctx.job.id, "letta_agent_id": agent_id})
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)  # no media in the placeholder
    reason = await stay_while_attended(ctx.room, no_human_timeout_s())
    ctx.shutdown(reason=reason)


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
            wait_s = max(deadline - loop.time(), 0.0) if state is Presence.WAITING else None
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
    return Seen.TIMED_OUT if past_deadline else Seen.NOBODY
