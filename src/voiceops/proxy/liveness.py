"""Is an existing dispatch of our agent still going to give the room an agent? Pure policy.

On the open-source LiveKit server a dispatch outlives its agent: the job copy inside it stays
JS_RUNNING forever, and a dispatch whose JobRequest was dropped (no worker, every worker at
load >= 0.7, no answer within psrpc's 3 s deadline) keeps no job at all and is never retried.
So the dispatch list alone cannot say whether an agent is (or will be) in the room; the room's
participants can.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol import agent_dispatch, models

# How long a dispatch may go without a visible agent before we call it stale. It must cover
# LiveKit's JobRequest path (psrpc's 3 s deadline: after it a job either exists or never will)
# and an agent joining after assignment (job process start, Room.connect, WebRTC) on a loaded
# host, with margin; and stay
# short enough that a user coming back to an abandoned room soon gets a fresh agent. The margin
# also absorbs small clock skew between the proxy host and LiveKit (timestamps are LiveKit's).
DISPATCH_GRACE_S = 30.0
_NS_PER_S = 1_000_000_000

_GONE = models.ParticipantInfo.State.DISCONNECTED
_AGENT = models.ParticipantInfo.Kind.AGENT


def agent_identities(participants: Iterable[models.ParticipantInfo]) -> set[str]:
    """Identities of the agent participants still in the room."""
    return {p.identity for p in participants if p.kind == _AGENT and p.state != _GONE}


def _younger_than(start_ns: int, now_ns: int, grace_s: float) -> bool:
    # A start in the future (clock skew) counts as young: never replace on a clock quirk.
    return now_ns - start_ns < grace_s * _NS_PER_S


def dispatch_is_live(d: agent_dispatch.AgentDispatch, agent_identities: set[str], now_ns: int,
                     grace_s: float) -> bool:
    """True while the dispatch has (or may still get) its agent in the room.

    No job yet: live only while younger than the grace (its JobRequest may still come).
    With jobs: live if a job's agent participant is in the room, or a job that has not ended
    started less than the grace ago (its agent may still be joining).
    """
    jobs = d.state.jobs
    if not jobs:
        return _younger_than(d.state.created_at, now_ns, grace_s)
    for job in jobs:
        identity = job.state.participant_identity
        if identity and identity in agent_identities:
            return True
        # A job the worker refused with terminate=true is stored already ended: no agent comes.
        started_ns = job.state.started_at or d.state.created_at
        if not job.state.ended_at and _younger_than(started_ns, now_ns, grace_s):
            return True
    return False


def stale_reason(d: agent_dispatch.AgentDispatch) -> str:
    """Why a stale dispatch gave no agent, in words for the answer's message."""
    if not d.state.jobs:
        return "no worker ever took its job"
    return "its agent left the room"
