"""The process state machine: one table, illegal transitions raise."""

from __future__ import annotations

import itertools

import pytest

from voiceops.metrics import PROCESS_STATES
from voiceops.supervisor.state import (
    RUNNING,
    TRANSITIONS,
    IllegalTransition,
    State,
    check_transition,
)

ALLOWED = {
    ("starting", "ready"), ("starting", "draining"), ("starting", "stopping"),
    ("starting", "exited"), ("ready", "draining"), ("ready", "stopping"), ("ready", "exited"),
    ("draining", "stopping"), ("draining", "exited"), ("stopping", "exited"),
    ("exited", "starting"), ("exited", "backoff"), ("exited", "parked"),
    ("backoff", "starting"), ("backoff", "exited"), ("parked", "starting"),
    ("parked", "exited"),
}


def test_values_are_the_metric_labels() -> None:
    """State values are exactly the voiceops_process_state labels, in the same order."""
    assert tuple(s.value for s in State) == PROCESS_STATES
    assert str(State.READY) == "ready"


@pytest.mark.parametrize(("old", "new"), list(itertools.product(State, State)))
def test_table_is_exactly_the_allowed_edges(old: State, new: State) -> None:
    """Every edge of the table is allowed and every other pair raises."""
    if (old.value, new.value) in ALLOWED:
        assert check_transition(old, new) is new
    else:
        with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
            check_transition(old, new)


def test_every_state_has_a_row_and_running_states_can_exit() -> None:
    """The table covers every state, and every running state can reach EXITED."""
    assert set(TRANSITIONS) == set(State)
    assert all(State.EXITED in TRANSITIONS[s] for s in RUNNING)
