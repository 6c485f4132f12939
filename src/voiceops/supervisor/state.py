"""The lifecycle of one managed process: one enum, one transition table.

The values are metric labels (``voiceops_process_state{state}``) and appear in status JSON,
so they are a contract. Every state change goes through :func:`check_transition`; an edge
that is not in :data:`TRANSITIONS` is a bug and raises instead of corrupting the pool.
"""

from __future__ import annotations

from enum import Enum
from typing import Final


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
