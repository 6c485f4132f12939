"""Heartbeat policy: consecutive failures, fire and resolve; probe room names."""

from __future__ import annotations

from voiceops.monitor.heartbeat import (
    Action,
    HeartbeatState,
    ProbeResult,
    is_probe_room,
    next_state,
    probe_room_name,
)

OK, NJR, ERR = ProbeResult.OK, ProbeResult.NO_JOB_REQUEST, ProbeResult.DISPATCH_ERROR


def run(results: list[ProbeResult]) -> list[Action]:
    state, actions = HeartbeatState(), []
    for r in results:
        state, action = next_state(state, r)
        actions.append(action)
    return actions


def test_two_failures_in_a_row_fire_once() -> None:
    """The second consecutive failure fires; further failures do not fire again."""
    assert run([NJR, ERR, NJR]) == [Action.NONE, Action.FIRE, Action.NONE]


def test_a_success_between_failures_resets_the_count() -> None:
    """fail, ok, fail never fires: the failures were not in a row."""
    assert run([NJR, OK, NJR, OK]) == [Action.NONE] * 4


def test_next_success_resolves() -> None:
    """After firing, the next success resolves, and a success after that is quiet."""
    assert run([ERR, ERR, OK, OK]) == [Action.NONE, Action.FIRE, Action.RESOLVE, Action.NONE]


def test_no_join_counts_as_failure() -> None:
    """In join mode a probe whose agent never joined is a failure."""
    assert run([ProbeResult.NO_JOIN, ProbeResult.NO_JOIN])[-1] is Action.FIRE


def test_probe_room_name_is_safe_and_recognised() -> None:
    """The probe room is voiceops-probe-<host>-<n> with the host made room-name safe."""
    assert probe_room_name("web-1", 3) == "voiceops-probe-web-1-3"
    assert probe_room_name("a.b c", 1) == "voiceops-probe-a-b-c-1"
    assert is_probe_room(probe_room_name("h", 9))
    assert not is_probe_room("support-room")
