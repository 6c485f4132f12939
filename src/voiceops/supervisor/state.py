"""The lifecycle of one managed process: one enum, one transition table.

The values are metric labels (``voiceops_process_state{state}``) and appear in status JSON,
so they are a contract. Every state change goes through :func:`check_transition`; an edge
that is not in :data:`TRANSITIONS` is a bug and raises instead of corrupting the pool.

The sub-state that only means something in some states (why and how a drain was ordered,
a stop asked for while spawning, when a backoff ends, whether the next exit is the last)
lives in one frozen :class:`Phase`; :data:`HOLDS` says which state holds which part, and
:func:`transition` / :func:`amend` are the only ways to change it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final


class State(str, Enum):
    STARTING = "starting"  # spawned, waiting for its ``ready`` event
    READY = "ready"  # reported ready; serving
    DRAINING = "draining"  # got its one SIGTERM; finishing live jobs within the budget
    STOPPING = "stopping"  # being killed (budget spent, start timeout, hard RSS limit)
    EXITED = "exited"  # not running and not scheduled to run
    BACKOFF = "backoff"  # exited unexpectedly; waiting for its restart delay
    PARKED = "parked"  # crash loop: waiting for the cool-down before one more try

    def __str__(self) -> str:
        return self.value


class IllegalTransition(RuntimeError):
    """A state change the table does not allow (a supervisor bug)."""


S = State
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    S.STARTING: frozenset({S.READY, S.DRAINING, S.STOPPING, S.EXITED}),
    S.READY: frozenset({S.DRAINING, S.STOPPING, S.EXITED}),
    S.DRAINING: frozenset({S.STOPPING, S.EXITED}),
    S.STOPPING: frozenset({S.EXITED}),
    # EXITED is also where a child lands before the restart decision moves it on.
    S.EXITED: frozenset({S.STARTING, S.BACKOFF, S.PARKED}),
    S.BACKOFF: frozenset({S.STARTING, S.EXITED}),
    S.PARKED: frozenset({S.STARTING, S.EXITED}),
}

RUNNING: Final = frozenset({S.STARTING, S.READY, S.DRAINING, S.STOPPING})


def check_transition(old: State, new: State) -> State:
    """Return ``new`` if ``old → new`` is allowed, else raise :class:`IllegalTransition`."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"illegal process state transition {old.value} -> {new.value}")
    return new


@dataclass(frozen=True)
class StopOrder:
    """How this run is being stopped: our reason, the one signal we sent, the drain deadline."""

    reason: str
    sent: signal.Signals
    deadline: float | None = None  # monotonic seconds; set while DRAINING


@dataclass(frozen=True)
class PendingStop:
    """A graceful stop asked for while the child was still being spawned (no PID to signal)."""

    reason: str
    budget_s: float | None


@dataclass(frozen=True)
class Phase:
    """The state with its sub-state; only :func:`transition` and :func:`amend` make new ones."""

    state: State = State.EXITED
    final: bool = False  # the next exit is the last (no restart); never unset once set
    stop: StopOrder | None = None
    pending: PendingStop | None = None
    next_start_at: float | None = None  # monotonic seconds; None in BACKOFF: start now


SUBSTATE: Final = ("stop", "pending", "next_start_at")
# Which sub-state each state holds; a transition drops what the new state does not hold.
HOLDS: Final[dict[State, frozenset[str]]] = {
    S.STARTING: frozenset({"pending"}),
    S.READY: frozenset(),
    S.DRAINING: frozenset({"stop"}),
    S.STOPPING: frozenset({"stop"}),
    S.EXITED: frozenset(),
    S.BACKOFF: frozenset({"next_start_at"}),
    S.PARKED: frozenset({"next_start_at"}),
}


def transition(phase: Phase, new: State, **changes: Any) -> Phase:
    """``phase`` moved to ``new`` along a table edge, with ``changes`` to the sub-state."""
    check_transition(phase.state, new)
    dropped = {k: None for k in SUBSTATE if k not in HOLDS[new]}
    return _checked(phase, replace(phase, state=new, **{**dropped, **changes}))


def amend(phase: Phase, **changes: Any) -> Phase:
    """``phase`` with its sub-state changed, in the same state."""
    if "state" in changes:
        raise IllegalTransition("a state change goes through transition()")
    return _checked(phase, replace(phase, **changes))


def _checked(old: Phase, new: Phase) -> Phase:
    held = [k for k in SUBSTATE if getattr(new, k) is not None and k not in HOLDS[new.state]]
    if held:
        raise IllegalTransition(f"{new.state.value} cannot hold {', '.join(held)}")
    if old.final and not new.final:
        raise IllegalTransition("a final stop cannot be taken back")
    if new.state in (S.DRAINING, S.STOPPING) and new.stop is None:
        raise IllegalTransition(f"{new.state.value} needs a stop order")
    if new.state is S.DRAINING and new.stop is not None and new.stop.deadline is None:
        raise IllegalTransition("draining needs a deadline")
    return new
