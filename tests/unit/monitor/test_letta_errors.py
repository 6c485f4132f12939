"""Failed Letta turns from job processes: counted by kind, and LettaUnreachable from calls."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from voiceops import config, events
from voiceops.events import LettaError
from voiceops.monitor import alerts as A
from voiceops.monitor import lettacalls
from voiceops.monitor.metrics import Metrics
from voiceops.monitor.monitor import Monitor, MonitorOptions

AGENT = "letta-voice-agent"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mon(clock: Clock) -> Monitor:
    cfg = config.from_dict({"agent": {"name": AGENT}})
    return Monitor(cfg, config.Secrets(livekit_api_secret="s"), Metrics(AGENT, CollectorRegistry()),
                   status_provider=lambda: {}, clock=clock, wall=lambda: 1_700_000_000.0,
                   options=MonitorOptions(host="h", letta_failure_window_s=60))


def errors(mon: Monitor, kind: str) -> float | None:
    return mon.metrics.registry.get_sample_value("voiceops_letta_errors_total",
                                                 {"agent_name": AGENT, "kind": kind})


def firing(mon: Monitor) -> list[str]:
    return [a["alert"] for a in mon.alerts()]


def test_letta_error_series_exist_at_zero_and_count_by_kind(mon: Monitor) -> None:
    """Every kind is exported at 0 before the first failure; each event adds one."""
    assert [errors(mon, k) for k in ("error", "timeout", "dropped")] == [0, 0, 0]
    mon.on_event(LettaError(kind="timeout", letta_agent_id="agent-x", latency_s=8.0))
    assert errors(mon, "timeout") == 1 and errors(mon, "error") == 0


def test_an_unknown_kind_is_dropped_not_a_new_series(mon: Monitor) -> None:
    """A bad kind label from a child goes to voiceops_events_dropped_total."""
    mon.on_event(LettaError(kind="weird"))
    assert errors(mon, "weird") is None
    assert mon.metrics.registry.get_sample_value("voiceops_events_dropped_total") == 1


def test_two_failed_turns_in_the_window_fire_letta_unreachable_then_it_ages_out(
        mon: Monitor, clock: Clock) -> None:
    """One failure is a blip; a second within 60 s fires with a diagnosis naming the kind;
    once both are older than the window, the next tick resolves it."""
    mon.on_event(LettaError(kind="error", detail="HTTP 503"))
    assert A.LETTA_UNREACHABLE not in firing(mon)
    clock.now += 30
    mon.on_event(LettaError(kind="dropped", detail="RemoteProtocolError"))
    alert = next(a for a in mon.alerts() if a["alert"] == A.LETTA_UNREACHABLE)
    assert "2 call turns" in alert["diagnosis"] and "dropped" in alert["diagnosis"]
    clock.now += 61
    mon._letta_verdict()
    assert A.LETTA_UNREACHABLE not in firing(mon)


def test_failures_far_apart_never_fire(mon: Monitor, clock: Clock) -> None:
    """Two failures more than the window apart are two blips."""
    mon.on_event(LettaError(kind="timeout"))
    clock.now += 61
    mon.on_event(LettaError(kind="timeout"))
    assert A.LETTA_UNREACHABLE not in firing(mon)


def test_call_failures_policy_prunes_and_thresholds() -> None:
    """record keeps only failures inside the window; firing needs FAILURES_TO_FIRE of them."""
    s = lettacalls.record(lettacalls.CallFailures(), 0.0, "error", "HTTP 500", 10)
    s = lettacalls.record(s, 5.0, "timeout", "", 10)
    assert lettacalls.firing(s, 6.0, 10) and not lettacalls.firing(s, 10.5, 10)
    assert lettacalls.record(s, 100.0, "error", "", 10).times == (100.0,)


def test_letta_error_round_trips_on_the_wire() -> None:
    """letta_error is a registered event type: encode → decode gives it back."""
    ev = LettaError(kind="dropped", letta_agent_id="agent-1", latency_s=1.5, detail="ReadError")
    back = events.decode(events.encode(ev))
    assert isinstance(back, LettaError) and back.kind == "dropped" and back.latency_s == 1.5
