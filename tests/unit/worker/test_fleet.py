"""Jobs spread over the workers (voiceops.worker.fleet): the pass policy, the shared records,
and the request handler passing an offer on instead of taking it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import agent, models

from voiceops import config, events
from voiceops.supervisor.main import child_env
from voiceops.worker import fleet
from voiceops.worker.fleet import FleetBoard, Peer, parse, passes
from voiceops.worker.handler import RequestHandler

NOW = 10_000_000_000


def _alive(pid: int) -> bool:
    return pid != 666


def peer(jobs: int, *, ready: bool = True, age_s: float = 0.1, pid: int = 42) -> Peer:
    return Peer(pid, jobs, ready, NOW - int(age_s * 1e9))


@pytest.mark.parametrize(("mine", "peers", "expected"), [
    (0, [], False),  # alone: always take it
    (1, [peer(0)], True),  # ahead of a ready peer: pass
    (3, [peer(3)], False),  # level: take it
    (5, [peer(5), peer(6)], False),
    (9, [peer(9), peer(8)], True),  # any ready peer behind
    (3, [peer(0, ready=False)], False),  # draining, standby, full or reconnecting: never
    (3, [peer(0, age_s=1.5)], False),  # its word is stale
    (3, [peer(0, age_s=-1.0)], False),  # stamped in the future: not trusted either
    (3, [peer(0, pid=666)], False),  # its process is gone
])
def test_an_offer_is_passed_only_toward_a_ready_peer_behind(
        mine: int, peers: list[Peer], expected: bool) -> None:
    assert passes("AJ_1", mine, peers, NOW, _alive) is expected


def test_jobs_just_passed_count_toward_the_peers() -> None:
    """Burst: 13 offers here, 7 at the peer, all at once. Counting the jobs passed on but not
    yet in the peer's record, this worker keeps 10 and passes 3 (without: it passed 6 and the
    peer, bound to take them, ended with 13)."""
    held, passed = 13, 0
    kept = 0
    while held:
        if passes(f"AJ_{held}", held - 1 + kept, [peer(7)], NOW, _alive, in_flight=passed):
            passed += 1
        else:
            kept += 1
        held -= 1
    assert (kept, 7 + passed) == (10, 10)


def test_a_job_is_passed_at_most_once() -> None:
    """Offered a job a peer passed, a worker takes it, however far ahead it is."""
    assert passes("AJ_2", 9, [peer(0)], NOW, _alive)
    assert not passes("AJ_2", 9, [peer(0), Peer(7, 12, True, NOW, frozenset({"AJ_2"}))], NOW,
                      _alive)


def test_the_least_loaded_ready_worker_never_passes() -> None:
    """Every pass goes to a peer with fewer jobs, so a job bounced along the workers ends
    with one that takes it: the minimum never passes, whatever the others hold."""
    counts = [0, 3, 7, 2, 9]
    board = [Peer(i, n, True, NOW) for i, n in enumerate(counts)]
    for me in board:
        others = [p for p in board if p.pid != me.pid]
        if passes("AJ_1", me.jobs, others, NOW, lambda pid: True):
            assert min(p.jobs for p in others) < me.jobs
    least = min(board, key=lambda p: p.jobs)
    assert not passes("AJ_1", least.jobs, [p for p in board if p is not least], NOW,
                      lambda pid: True)


def test_a_record_round_trips() -> None:
    raw = fleet.encode(3, True, 12345, ["AJ_a", "AJ_b"], ["AJ_c"])
    assert len(raw) == fleet.RECORD_BYTES
    assert parse(7, raw) == Peer(7, 3, True, 12345, frozenset({"AJ_a", "AJ_b"}),
                                 frozenset({"AJ_c"}))
    assert parse(7, fleet.encode(0, False, 9, [])) == Peer(7, 0, False, 9, frozenset())


def test_only_the_newest_passed_jobs_fit() -> None:
    ids = [f"AJ_{i:012d}" for i in range(100)]
    peer_seen = parse(7, fleet.encode(3, True, 12345, ids))
    assert peer_seen is not None and "AJ_000000000099" in peer_seen.passed
    assert "AJ_000000000000" not in peer_seen.passed


@pytest.mark.parametrize("raw", [
    b"", b"1 1 5 - - 00000000", b"x" * 512,
    fleet.encode(3, True, 12345, ["AJ_a"]).replace(b"3 1", b"9 1"),  # torn: CRC no longer fits
    fleet.encode(3, True, 12345, ["AJ_a"])[:12],  # the first bytes of it
])
def test_an_unreadable_record_is_no_peer(raw: bytes) -> None:
    assert parse(7, raw) is None


def test_records_are_shared_through_the_directory(tmp_path: Path) -> None:
    clock = iter(range(NOW, NOW + 100)).__next__
    me = FleetBoard(tmp_path, pid=os.getpid(), clock_ns=clock)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = FleetBoard(tmp_path, pid=sleeper.pid, clock_ns=clock)
        other.publish(jobs=1, ready=True)
        me.publish(jobs=4, ready=True)
        assert [(p.pid, p.jobs, p.ready) for p in me.peers()] == [(sleeper.pid, 1, True)]
        assert [(p.pid, p.jobs) for p in other.peers()] == [(os.getpid(), 4)]
        assert me.passes("AJ_9", 4)  # noted, and on record once published
        me.publish(jobs=4, ready=True)
        assert other.peers()[0].passed == {"AJ_9"}
        assert me._in_flight(me.peers(), clock()) == 1  # on its way: counted toward the peer
        assert not other.would_pass("AJ_9", 9)  # passed once already: taken, and noted
        other.publish(jobs=2, ready=True)
        assert me.peers()[0].taken == {"AJ_9"}
        assert me._in_flight(me.peers(), clock()) == 0  # the peer's count has it now: not twice
        me.close()
        assert other.peers() == []
    finally:
        sleeper.kill()
        sleeper.wait()
    # A worker killed with -9 leaves its record: the next board sweeps it away.
    assert (tmp_path / str(sleeper.pid)).exists()
    FleetBoard(tmp_path, pid=os.getpid())
    assert not (tmp_path / str(sleeper.pid)).exists()


class _Request:
    def __init__(self, metadata: str = "") -> None:
        self.job = agent.Job(id="AJ_1", dispatch_id="AD_1", agent_name="a", metadata=metadata,
                             room=models.Room(name="r"))
        self.answers: list[tuple[str, Any]] = []

    async def accept(self, **kwargs: Any) -> None:
        self.answers.append(("accept", kwargs))

    async def reject(self, *, terminate: bool) -> None:
        self.answers.append(("reject", terminate))


def _handle(req: _Request, *, passes_on: bool) -> tuple[list[events.Event], list[str]]:
    seen: list[events.Event] = []
    accepted: list[str] = []
    async def passes_offer(job_id: str) -> bool:
        return passes_on

    handler = RequestHandler(agent_name="a", worker_id=lambda: "W", draining=lambda: False,
                             emit=lambda ev: seen.append(ev) or True, passes=passes_offer,
                             on_decided=accepted.append)
    asyncio.run(handler(req))  # type: ignore[arg-type]
    return seen, accepted


def test_a_passed_offer_goes_back_to_livekit_for_another_worker() -> None:
    req = _Request()
    seen, decided = _handle(req, passes_on=True)
    assert req.answers == [("reject", False)]  # not terminate: LiveKit tries another worker
    assert [getattr(ev, "decision", None) for ev in seen] == ["rejected"]
    assert decided == ["AJ_1"]


def test_an_offer_not_passed_is_taken() -> None:
    req = _Request()
    _handle(req, passes_on=False)
    assert req.answers[0][0] == "accept"


def test_probes_are_never_passed() -> None:
    req = _Request(metadata='{"voiceops_probe": true, "mode": "join"}')
    _handle(req, passes_on=True)
    assert req.answers[0][0] == "accept"


def test_the_supervisor_gives_its_workers_one_directory(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    cfg = config.Config()
    env = child_env(cfg, config.Secrets(livekit_api_secret="s"), sandbox=False)
    assert env[fleet.ENV] == str(tmp_path / "fleet")
    assert cfg.workers.spread_jobs is True  # on by default; off: the worker gets no directory


@pytest.mark.parametrize(("spread", "expected"), [(True, "/run/x/fleet"), (False, "")])
def test_workers_spread_jobs_false_gives_the_worker_no_directory(
        spread: bool, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from voiceops.worker.options import WorkerOptions

    monkeypatch.setenv(fleet.ENV, "/run/x/fleet")
    cfg = config.Config()
    cfg = replace(cfg, workers=replace(cfg.workers, spread_jobs=spread))
    assert WorkerOptions.from_config(cfg, config.Secrets(livekit_api_secret="s")).fleet_dir \
        == expected


def test_offers_held_count_deciding_and_accepted_not_passed() -> None:
    """What a worker publishes as its own: an offer counts while decided and until its job is
    launched; one passed on stops counting once answered. Only an accepted offer wants a job
    process started ahead (``launching``)."""
    seen: dict[str, int] = {}
    handler: RequestHandler

    async def passes_offer(job_id: str) -> bool:
        seen["deciding"] = handler.offers_held
        seen["deciding, wanting a process"] = handler.launching
        return job_id == "AJ_pass"

    class Launching(_Request):
        async def accept(self, **kwargs: Any) -> None:
            seen["launching"] = handler.offers_held
            seen["launching, wanting a process"] = handler.launching

    handler = RequestHandler(agent_name="a", worker_id=lambda: "W", draining=lambda: False,
                             emit=lambda ev: True, passes=passes_offer)
    asyncio.run(handler(Launching()))  # type: ignore[arg-type]
    assert seen == {"deciding": 1, "launching": 1, "deciding, wanting a process": 0,
                    "launching, wanting a process": 1}
    assert handler.offers_held == handler.launching == 0
    passed = _Request()
    passed.job.id = "AJ_pass"
    asyncio.run(handler(passed))  # type: ignore[arg-type]
    assert passed.answers == [("reject", False)] and handler.offers_held == 0
    assert seen["deciding, wanting a process"] == 0 and handler.launching == 0
