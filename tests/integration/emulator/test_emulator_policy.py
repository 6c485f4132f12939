"""Pure policies of the emulator: target load, worker choice, room rules, termination, faults."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from livekit.protocol import agent, models

from voiceops.emulator.dispatcher import Dispatcher
from voiceops.emulator.faults import FaultController, FaultError, parse_faults
from voiceops.emulator.options import EmulatorOptions
from voiceops.emulator.state import (
    Participant,
    ParticipantKind,
    Room,
    is_dependent,
    room_should_close,
)
from voiceops.emulator.workers import (
    TARGET_LOAD,
    JobRecord,
    Worker,
    WorkerRegistry,
    choose_worker,
    node_affinity,
)


def _worker(wid: str, load: float, status: int = agent.WS_AVAILABLE) -> Worker:
    return Worker(
        id=wid,
        key=("a", "", agent.JT_ROOM),
        version="t",
        permissions=None,  # type: ignore[arg-type]
        ws=None,
        status=status,
        load=load,
    )  # type: ignore[arg-type]


def test_choice_is_weighted_by_free_capacity() -> None:
    """A worker at load 0.8 is picked about 4x less often than one at 0.2; FULL ones never."""
    rng = random.Random(7)
    pool = [_worker("light", 0.2), _worker("heavy", 0.8), _worker("full", 0.0, agent.WS_FULL)]
    counts = Counter(choose_worker(pool, rng).id for _ in range(5000))  # type: ignore[union-attr]
    assert counts["full"] == 0
    assert 3.2 < counts["light"] / counts["heavy"] < 4.8


def test_no_choice_without_capacity() -> None:
    """No worker is chosen when none is AVAILABLE with load below 1."""
    rng = random.Random(1)
    assert choose_worker([], rng) is None
    assert choose_worker([_worker("x", 1.0), _worker("y", 0.1, agent.WS_FULL)], rng) is None


def _room(**kw: Any) -> Room:
    return Room(
        sid="RM_x", name="r", created_at_s=100.0, empty_timeout_s=300, departure_timeout_s=20, **kw
    )


def test_room_close_policy() -> None:
    """Never-joined rooms use empty_timeout; joined-and-left rooms use departure_timeout."""
    assert not room_should_close(_room(), 399.0)
    assert room_should_close(_room(), 400.0)
    left = _room(first_joined_at_s=110.0, last_left_at_s=150.0)
    assert not room_should_close(left, 169.0)
    assert room_should_close(left, 170.0)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"twirp_delay_s": -1}, "twirp_delay_s"),
        ({"swallow_job_requests": [1]}, "swallow_job_requests"),
        ({"drop_workers": "yes"}, "drop_workers"),
        ({"twirp_error": True}, "twirp_error"),
    ],
)
def test_fault_parsing_names_the_bad_key(raw: dict[str, Any], key: str) -> None:
    """Every invalid fault setting raises FaultError naming its key."""
    with pytest.raises(FaultError) as err:
        parse_faults(raw)
    assert err.value.key == key


def test_fault_controller_merges_and_drops_once() -> None:
    """set() merges settings, drop_workers fires its callback once and is not remembered."""
    drops: list[int] = []
    ctl = FaultController(lambda: drops.append(1))
    ctl.set(swallow_job_requests=["voice"])
    ctl.set(twirp_error=503, drop_workers=True)
    assert ctl.current.swallows("voice") and not ctl.current.swallows("other")
    assert ctl.current.twirp_error == 503 and drops == [1]
    assert ctl.clear().to_json()["swallow_job_requests"] == []
    assert FaultController().set(swallow_job_requests=True).swallows("anything")


def test_node_claims_only_below_target_load() -> None:
    """Go's JobRequestAffinity: sum of 0.7 - load over AVAILABLE workers; nothing at >= 0.7."""
    assert node_affinity([_worker("a", 0.7), _worker("b", 0.95)]) == 0
    assert node_affinity([_worker("a", 0.1, agent.WS_FULL), _worker("b", 0.8)]) == 0
    assert node_affinity([]) == 0
    assert node_affinity([_worker("a", 0.2), _worker("b", 0.9)]) == pytest.approx(0.5)
    assert node_affinity([_worker("a", 0.2), _worker("b", 0.6)]) == pytest.approx(0.6)
    assert TARGET_LOAD == 0.7


def test_agents_are_outside_room_limits() -> None:
    """Agents and recorders do not fill max_participants nor keep a room open."""
    assert is_dependent(ParticipantKind.AGENT) and is_dependent(ParticipantKind.EGRESS)
    assert is_dependent(ParticipantKind.STANDARD, agent_grant=True)
    assert not is_dependent(ParticipantKind.STANDARD) and not is_dependent(ParticipantKind.SIP)
    room = _room(max_participants=1)
    room.participants["agent-AJ_1"] = _participant("agent-AJ_1", ParticipantKind.AGENT)
    assert not room.is_full() and room.keeps_room_alive() == []
    room.participants["caller"] = _participant("caller", ParticipantKind.STANDARD)
    assert room.is_full()


def _participant(identity: str, kind: int) -> Participant:
    return Participant(
        sid=f"PA_{identity}",
        identity=identity,
        name="",
        kind=kind,
        metadata="",
        attributes={},
        joined_at_s=100.0,
        sink=None,
        permission=models.ParticipantPermission(),
        dependent=is_dependent(kind),
    )


class _RecordingSocket:
    """Stands in for the worker's WebSocket: keeps the ServerMessages sent to it."""

    def __init__(self) -> None:
        self.sent: list[agent.ServerMessage] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(agent.ServerMessage.FromString(data))


async def test_termination_skips_jobs_the_worker_already_ended() -> None:
    """TerminateJob sends JobTermination only for running jobs, and records the end state."""
    registry = WorkerRegistry()
    worker = _worker("w", 0.0)
    worker.ws = _RecordingSocket()  # type: ignore[assignment]
    worker.jobs["AJ_run"] = JobRecord("AJ_run", "AD_1", "r", "agent-AJ_run")
    worker.jobs["AJ_done"] = JobRecord("AJ_done", "AD_1", "r", "agent-AJ_done", agent.JS_SUCCESS)
    registry.add(worker)
    dispatcher = Dispatcher(EmulatorOptions(port=0), registry, FaultController(), random.Random())
    assert await dispatcher.terminate_job("AJ_done", left_room=True) is None
    left = await dispatcher.terminate_job("AJ_run", left_room=True)
    assert left is not None and (left.status, left.error) == (
        agent.JS_FAILED,
        "agent worker left the room",
    )
    assert [m.termination.job_id for m in worker.ws.sent] == ["AJ_run"]  # type: ignore[attr-defined]
    assert await dispatcher.terminate_job("AJ_run", left_room=False) is None  # ended now
