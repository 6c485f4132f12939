"""Correlation of dispatches, JobRequests and joins on a fake clock."""

from __future__ import annotations

import pytest

from voiceops.monitor.correlate import CorrelateOptions, Correlator, Phase, Verdict


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kw: object) -> Correlator:
    return Correlator(CorrelateOptions(deadline_s=10.0, **kw), clock)  # type: ignore[arg-type]


def test_job_request_observes_seconds_since_dispatch(clock: FakeClock) -> None:
    """A JobRequest returns the time since the dispatch and is observed only once."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 0.4
    assert c.job_request("AD_1", "AJ_1", "r1") == pytest.approx(0.4)
    assert c.job_request("AD_1", "AJ_2", "r1") is None
    assert c.job_request("AD_unknown", "AJ_3", "r1") is None


def test_join_counted_once_worker_then_webhook(clock: FakeClock) -> None:
    """The worker's join counts; the webhook for the same job (identity agent-<job>) does not."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 0.2
    c.job_request("AD_1", "AJ_1", "r1")
    clock.now += 1.0
    found = c.agent_joined(job_id="AJ_1", dispatch_id="AD_1", room="r1")
    assert found is not None and found[1] == pytest.approx(1.2)
    clock.now += 0.1
    assert c.agent_joined(room="r1", identity="agent-AJ_1") is None


def test_webhook_join_first_then_worker(clock: FakeClock) -> None:
    """A webhook join with only room and identity counts; the later worker event does not."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    c.job_request("AD_1", "AJ_1", "r1")
    clock.now += 2.0
    found = c.agent_joined(room="r1", identity="agent-AJ_1")
    assert found is not None and found[0].dispatch_id == "AD_1"
    assert c.agent_joined(job_id="AJ_1", dispatch_id="AD_1", room="r1") is None


def test_join_counts_only_for_the_dispatch_of_its_job(clock: FakeClock) -> None:
    """A join whose job no JobRequest tied to the dispatch (a replayed webhook, another agent in
    the room) answers nothing; once ListDispatch lists the job, that join counts."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 3.0
    assert c.agent_joined(room="r1", identity="agent-AJ_old") is None
    assert c.agent_joined(job_id="AJ_old", dispatch_id="AD_1", room="r1") is None
    assert c.get("AD_1").phase is Phase.WAITING
    clock.now += 7.5
    assert [e.dispatch_id for e in c.take_due()] == ["AD_1"]
    assert c.confirmed("AD_1", job_found=True, job_ids=("AJ_elsewhere",)) is Verdict.ANSWERED
    assert c.knows_job("AJ_elsewhere") and not c.knows_job("AJ_old")
    found = c.agent_joined(room="r1", identity="agent-AJ_elsewhere")
    assert found is not None and found[0].dispatch_id == "AD_1"


def test_deadline_then_confirmation_missing_is_unanswered(clock: FakeClock) -> None:
    """Past the deadline with no JobRequest the entry is due once; no job listed → UNANSWERED."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 9.9
    assert c.take_due() == []
    clock.now += 0.2
    due = c.take_due()
    assert [e.dispatch_id for e in due] == ["AD_1"]
    assert c.take_due() == []
    assert c.confirmed("AD_1", job_found=False) is Verdict.UNANSWERED
    assert c.confirmed("AD_1", job_found=False) is Verdict.IGNORED


def test_confirmation_with_job_counts_as_answered(clock: FakeClock) -> None:
    """A job listed by ListDispatch (a worker elsewhere took it) means answered."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 11
    c.take_due()
    assert c.confirmed("AD_1", job_found=True) is Verdict.ANSWERED
    assert c.get("AD_1").phase is Phase.REQUESTED  # type: ignore[union-attr]


def test_job_request_during_confirmation_wins(clock: FakeClock) -> None:
    """A JobRequest arriving while ListDispatch is in flight makes the confirmation moot."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 11
    c.take_due()
    assert c.job_request("AD_1", "AJ_1", "r1") == pytest.approx(11)
    assert c.confirmed("AD_1", job_found=False) is Verdict.IGNORED


def test_redispatch_only_once(clock: FakeClock) -> None:
    """With redispatch on, an unanswered dispatch is re-created once; the new one is not."""
    c = make(clock, redispatch=True)
    c.dispatched("AD_1", "r1", "agent")
    clock.now += 11
    c.take_due()
    assert c.confirmed("AD_1", job_found=False) is Verdict.REDISPATCH
    c.dispatched("AD_2", "r1", "agent", redispatched=True)
    clock.now += 11
    assert [e.dispatch_id for e in c.take_due()] == ["AD_2"]
    assert c.confirmed("AD_2", job_found=False) is Verdict.UNANSWERED


def test_reused_dispatch_is_not_tracked_twice(clock: FakeClock) -> None:
    """Tracking the same dispatch id twice is refused."""
    c = make(clock)
    assert c.dispatched("AD_1", "r1", "agent")
    assert not c.dispatched("AD_1", "r1", "agent")
    assert len(c) == 1


def test_ten_thousand_in_flight_all_resolve_and_expire(clock: FakeClock) -> None:
    """10,000 dispatches in flight are all correlated, then expire, leaving nothing behind."""
    c = make(clock, linger_s=30.0, join_timeout_s=60.0)
    n = 10_000
    for i in range(n):
        c.dispatched(f"AD_{i}", f"room-{i}", "agent")
    assert len(c) == n
    clock.now += 1.0
    seen = [c.job_request(f"AD_{i}", f"AJ_{i}", f"room-{i}") for i in range(n)]
    assert all(s == pytest.approx(1.0) for s in seen)
    joins = [c.agent_joined(room=f"room-{i}", identity=f"agent-AJ_{i}") for i in range(0, n, 2)]
    assert all(j is not None for j in joins)
    clock.now += 20.0
    assert c.take_due() == []  # all answered before their deadline
    assert c.sweep() == []
    clock.now += 15.0  # joined entries (linger 30 s) are gone, unjoined (60 s) still wait
    assert c.sweep() == []
    assert len(c) == n // 2
    clock.now += 30.0
    expired = c.sweep()
    assert len(expired) == n // 2 and all(e.phase is Phase.REQUESTED for e in expired)
    assert len(c) == 0
    assert c.evicted == 0
    assert not c._by_job and not c._by_room  # indexes are bounded too


def test_unanswered_thousands_expire(clock: FakeClock) -> None:
    """Unanswered dispatches leave after their linger, so memory does not grow with failures."""
    c = make(clock, linger_s=5.0)
    for i in range(5_000):
        c.dispatched(f"AD_{i}", "same-room", "agent")
    clock.now += 10.5
    due = c.take_due()
    assert len(due) == 5_000
    for e in due:
        c.confirmed(e.dispatch_id, job_found=False)
    clock.now += 5.1
    c.sweep()
    assert len(c) == 0 and not c._by_room


def test_hard_cap_evicts_oldest_first(clock: FakeClock) -> None:
    """Above max_entries the oldest entry is evicted and counted."""
    c = make(clock, max_entries=100)
    for i in range(150):
        c.dispatched(f"AD_{i}", f"r{i}", "agent")
    assert len(c) == 100
    assert c.evicted == 50
    assert c.get("AD_0") is None and c.get("AD_50") is not None
    assert c.job_request("AD_10", "AJ", "r10") is None


def test_max_age_bounds_a_dispatch_waiting_for_its_join(clock: FakeClock) -> None:
    """No entry outlives max_age_s, whatever its state."""
    c = make(clock, max_age_s=50.0, join_timeout_s=1000.0)
    c.dispatched("AD_1", "r1", "agent")
    c.job_request("AD_1", "AJ_1", "r1")
    clock.now += 50.0
    assert [e.dispatch_id for e in c.sweep()] == ["AD_1"]
    assert len(c) == 0


def test_timeline_carries_deadline_and_diagnosis(clock: FakeClock) -> None:
    """The timeline gives the deadline, then the diagnosis once the monitor recorded one."""
    c = make(clock)
    c.dispatched("AD_1", "r1", "agent")
    assert c.get("AD_1").timeline()["deadline_s"] == pytest.approx(10.0)  # type: ignore[union-attr]
    assert c.get("AD_1").timeline()["diagnosis"] is None  # type: ignore[union-attr]
    clock.now += 10.0
    c.take_due()
    c.confirmed("AD_1", job_found=False)
    c.diagnosed("AD_1", "no JobRequest within 10 s: workers are full")
    c.diagnosed("AD_gone", "ignored: not tracked")
    timeline = c.get("AD_1").timeline()  # type: ignore[union-attr]
    assert timeline["phase"] == "unanswered"
    assert timeline["diagnosis"] == "no JobRequest within 10 s: workers are full"
