"""dispatch_is_live: whether an existing dispatch will still give the room an agent."""

from __future__ import annotations

import pytest
from livekit.protocol import agent, agent_dispatch, models

from voiceops.proxy.liveness import agent_identities, dispatch_is_live, stale_reason

S = 1_000_000_000
NOW = 1_700_000_000 * S
GRACE_S = 30.0


def dispatch(created_ago_s: float, *jobs: agent.Job) -> agent_dispatch.AgentDispatch:
    state = agent_dispatch.AgentDispatchState(created_at=NOW - int(created_ago_s * S), jobs=jobs)
    return agent_dispatch.AgentDispatch(id="AD_x", agent_name="a", room="r", state=state)


def job(identity: str = "agent-1", started_ago_s: float | None = None,
        ended: bool = False) -> agent.Job:
    state = agent.JobState(status=agent.JS_RUNNING, participant_identity=identity)
    if started_ago_s is not None:
        state.started_at = NOW - int(started_ago_s * S)
    if ended:
        state.status, state.ended_at = agent.JS_SUCCESS, NOW - S
    return agent.Job(id="AJ_1", state=state)


@pytest.mark.parametrize(("age_s", "live"), [
    pytest.param(0.0, True, id="just-created"),
    pytest.param(GRACE_S - 0.001, True, id="just-under-grace"),
    pytest.param(GRACE_S, False, id="exactly-grace"),
    pytest.param(GRACE_S + 0.001, False, id="just-over-grace"),
    pytest.param(-5.0, True, id="created-in-the-future-clock-skew"),
])
def test_no_job_is_live_only_while_younger_than_grace(age_s: float, live: bool):
    """A dispatch without a job is live only while its JobRequest may still come (age < grace)."""
    assert dispatch_is_live(dispatch(age_s), set(), NOW, GRACE_S) is live


def test_no_job_ignores_agents_in_the_room():
    """Agents in the room do not keep a job-less old dispatch alive (they belong to others)."""
    assert not dispatch_is_live(dispatch(GRACE_S * 2), {"agent-1"}, NOW, GRACE_S)


def test_job_whose_agent_is_in_the_room_is_live_however_old():
    """A job whose agent participant is in the room is live long after the grace."""
    d = dispatch(3600, job("agent-1", started_ago_s=3600))
    assert dispatch_is_live(d, {"other", "agent-1"}, NOW, GRACE_S)


@pytest.mark.parametrize(("started_ago_s", "live"), [
    pytest.param(1.0, True, id="started-1s-ago"),
    pytest.param(GRACE_S - 0.001, True, id="just-under-grace"),
    pytest.param(GRACE_S, False, id="exactly-grace"),
    pytest.param(600.0, False, id="long-ago"),
])
def test_job_whose_agent_is_absent_is_live_only_within_grace_of_its_start(
        started_ago_s: float, live: bool):
    """Without its agent in the room, a job is live only while the agent may still be joining."""
    d = dispatch(3600, job("agent-1", started_ago_s=started_ago_s))
    assert dispatch_is_live(d, {"someone-else"}, NOW, GRACE_S) is live


@pytest.mark.parametrize(("created_ago_s", "live"), [
    pytest.param(GRACE_S - 0.001, True, id="dispatch-young"),
    pytest.param(GRACE_S, False, id="dispatch-at-grace"),
])
def test_job_without_started_at_falls_back_to_dispatch_created_at(created_ago_s: float,
                                                                  live: bool):
    """A job with no started_at is timed from the dispatch's created_at."""
    d = dispatch(created_ago_s, job("agent-1", started_ago_s=None))
    assert dispatch_is_live(d, set(), NOW, GRACE_S) is live


def test_job_ended_by_the_worker_is_not_waited_for():
    """A job stored already ended (worker refused with terminate) gives no agent, even if new."""
    d = dispatch(1.0, job("agent-1", started_ago_s=1.0, ended=True))
    assert not dispatch_is_live(d, set(), NOW, GRACE_S)


def test_any_live_job_makes_the_dispatch_live():
    """One dead job and one whose agent is present: the dispatch is live."""
    d = dispatch(3600, job("gone", started_ago_s=3600), job("here", started_ago_s=3600))
    assert dispatch_is_live(d, {"here"}, NOW, GRACE_S)
    assert not dispatch_is_live(d, {"elsewhere"}, NOW, GRACE_S)


def test_job_with_empty_identity_does_not_match_an_empty_name():
    """A job without a participant identity is not 'present' through an empty identity."""
    d = dispatch(3600, job("", started_ago_s=3600))
    assert not dispatch_is_live(d, {""}, NOW, GRACE_S)


def test_agent_identities_keeps_agents_still_in_the_room():
    """Only AGENT participants that have not disconnected count as agents in the room."""
    kind, state = models.ParticipantInfo.Kind, models.ParticipantInfo.State
    participants = [
        models.ParticipantInfo(identity="a1", kind=kind.AGENT, state=state.ACTIVE),
        models.ParticipantInfo(identity="a2", kind=kind.AGENT, state=state.JOINING),
        models.ParticipantInfo(identity="a3", kind=kind.AGENT, state=state.DISCONNECTED),
        models.ParticipantInfo(identity="user", kind=kind.STANDARD, state=state.ACTIVE),
    ]
    assert agent_identities(participants) == {"a1", "a2"}


def test_stale_reason_says_what_happened():
    """The reason distinguishes a dispatch that never got a job from one whose agent left."""
    assert stale_reason(dispatch(60)) == "no worker ever took its job"
    assert stale_reason(dispatch(60, job())) == "its agent left the room"
