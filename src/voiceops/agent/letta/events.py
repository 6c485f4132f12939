"""What the brain reports about each turn: :class:`BrainEvent`, and its voiceops job event.

A BrainEvent carries outcome and timings only, never the caller's words nor Letta's reply
text (personal data): ``detail`` is an HTTP status or an exception's class name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voiceops.events import LettaError


class BrainOutcome(enum.StrEnum):
    OK = "ok"
    ERROR = "error"  # Letta answered with an error, could not be reached, or said nothing
    TIMEOUT = "timeout"  # no first token within first_token_timeout_s
    DROPPED = "dropped"  # the stream broke off (closed early, or silent past the idle bound)


@dataclass(frozen=True, slots=True)
class BrainEvent:
    """One turn of one call: how it ended and how long it took."""

    kind: BrainOutcome
    letta_agent_id: str
    duration_s: float  # request sent → turn over (reply complete, or the failure seen)
    first_token_s: float | None = None  # request sent → first assistant token
    chunks: int = 0  # assistant text chunks forwarded
    reply_chars: int = 0
    conversation: bool = False  # ran in a per-call conversation (not the agent's default thread)
    detail: str = ""  # secret- and content-free: "HTTP 503", "ConnectError", "no stop_reason"

    @property
    def failed(self) -> bool:
        return self.kind is not BrainOutcome.OK


def to_voiceops_event(event: BrainEvent) -> LettaError | None:
    """The supervisor event for a failed turn (counted and fed to LettaUnreachable); None if ok."""
    if not event.failed:
        return None
    return LettaError(kind=str(event.kind), letta_agent_id=event.letta_agent_id,
                      latency_s=round(event.duration_s, 3), detail=event.detail)
