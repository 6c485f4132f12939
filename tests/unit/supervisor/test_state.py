"""The process state machine: one table, illegal transitions raise, sub-state lives where HOLDS
says."""

from __future__ import annotations

import itertools
import signal

import pytest

from voiceops.metrics import PROCESS_STATES
from voiceops.supervisor.state import (
    HOLDS,
    RUNNING,
    TRANSITIONS,
    IllegalTransition,
    PendingStop,
    Phase,
    State,
    StopOrder,
    amend,
    check_transition,
    transition,
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


def test_leaving_a_state_drops_the_sub_state_it_held() -> None:
    """A transition drops what the new state does not hold: the stop order at EXITED, the start
    time at STARTING."""
    draining = transition(transition(Phase(), State.STARTING), State.DRAINING,
                          stop=StopOrder("manual", signal.SIGTERM, 10.0))
    assert transition(draining, State.EXITED) == Phase(State.EXITED)
    backoff = transition(Phase(), State.BACKOFF, next_start_at=5.0)
    assert transition(backoff, State.STARTING) == Phase(State.STARTING)


@pytest.mark.parametrize(("state", "field", "value"), [
    (State.READY, "stop", StopOrder("manual", signal.SIGTERM, 1.0)),
    (State.EXITED, "next_start_at", 1.0),
    (State.BACKOFF, "pending", PendingStop("shutdown", None)),
    (State.DRAINING, "pending", PendingStop("shutdown", None)),
])
def test_a_state_cannot_hold_what_the_table_does_not_give_it(state: State, field: str,
                                                              value: object) -> None:
    """HOLDS is enforced: sub-state set in a state that does not hold it raises."""
    assert field not in HOLDS[state]
    base = Phase(state, stop=StopOrder("x", signal.SIGTERM, 1.0)) \
        if state is State.DRAINING else Phase(state)
    with pytest.raises(IllegalTransition, match="cannot hold"):
        amend(base, **{field: value})


def test_final_is_sticky_and_stops_need_an_order() -> None:
    """A final stop cannot be taken back; DRAINING needs a stop order with a deadline, STOPPING one
    at all."""
    final = amend(Phase(), final=True)
    with pytest.raises(IllegalTransition, match="final"):
        amend(final, final=False)
    starting = transition(final, State.STARTING)
    assert starting.final
    with pytest.raises(IllegalTransition, match="needs a deadline"):
        transition(starting, State.DRAINING, stop=StopOrder("manual", signal.SIGTERM))
    with pytest.raises(IllegalTransition, match="needs a stop order"):
        transition(starting, State.STOPPING)
    with pytest.raises(IllegalTransition, match="transition"):
        amend(starting, state=State.READY)
    with pytest.raises(IllegalTransition, match="ready -> starting"):
        transition(transition(starting, State.READY), State.STARTING)
