"""LettaUnreachable from the calls themselves: failed Letta turns in a sliding window.

The health check sees a server that is down; only the calls see a server that is up but
fails, stalls or cuts its streams. Pure functions over an explicit ``now`` (monotonic s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FAILURES_TO_FIRE: Final = 2  # one failed turn is a blip; two within the window are an outage
WINDOW_S: Final = 60.0


@dataclass(frozen=True)
class CallFailures:
    """Times of recent failed turns (oldest first) and how the last one failed."""

    times: tuple[float, ...] = ()
    last_kind: str = ""
    last_detail: str = ""


def record(state: CallFailures, now: float, kind: str, detail: str,
           window_s: float = WINDOW_S) -> CallFailures:
    """The state after one failed turn at ``now``."""
    return CallFailures(times=(*prune(state, now, window_s).times, now), last_kind=kind,
                        last_detail=detail)


def prune(state: CallFailures, now: float, window_s: float = WINDOW_S) -> CallFailures:
    kept = tuple(t for t in state.times if now - t <= window_s)
    return state if kept == state.times else CallFailures(kept, state.last_kind,
                                                          state.last_detail)


def firing(state: CallFailures, now: float, window_s: float = WINDOW_S,
           threshold: int = FAILURES_TO_FIRE) -> bool:
    return len(prune(state, now, window_s).times) >= threshold


def diagnosis(state: CallFailures, base_url: str, window_s: float = WINDOW_S) -> str:
    detail = f", {state.last_detail}" if state.last_detail else ""
    return (f"{len(state.times)} call turns to Letta at {base_url} failed in the last "
            f"{window_s:g} s (last: {state.last_kind}{detail}); callers heard the apology: "
            "check the Letta server, its LLM provider and letta.first_token_timeout_s")
