"""Diagnoses: one actionable line per cause, most fundamental cause first."""

from __future__ import annotations

from livekit import api

from voiceops.monitor import diagnose
from voiceops.monitor.diagnose import Facts, WorkerInfo
from voiceops.monitor.reach import Reachability, observe

AGENT = "letta-voice-agent"


def worker(name: str, state: str = "ready", **kw: object) -> dict[str, object]:
    return {"name": name, "kind": "worker", "state": state, **kw}


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {"agent_name": AGENT, "livekit_url": "ws://127.0.0.1:7880",
                               "pool": {"desired": 2, "ready": 2},
                               "processes": [worker("worker-0"), worker("worker-1")]}
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def test_name_mismatch_names_both_names() -> None:
    """Workers registered under another name: the diagnosis names both names."""
    text = diagnose.dispatch_path(facts(workers=[WorkerInfo("worker-0", "voice"),
                                                 WorkerInfo("worker-1", "voice")]))
    assert "workers registered as 'voice' but dispatches ask for 'letta-voice-agent'" in text


def test_worker_endpoint_beats_what_the_worker_claimed() -> None:
    """/worker (what LiveKit was told) wins over the agent name in the status."""
    procs = [worker("worker-0", agent_name=AGENT)]
    text = diagnose.dispatch_path(facts(processes=procs, workers=[WorkerInfo("worker-0", "x")]))
    assert "registered as 'x'" in text


def test_no_worker_registered() -> None:
    """No worker ready: say how many of how many and where to look."""
    text = diagnose.dispatch_path(facts(pool={"desired": 3, "ready": 0},
                                        processes=[worker("worker-0", "starting")]))
    assert text.startswith("no worker registered with LiveKit: 0 of 3 workers ready; "
                           "check `voiceops status` and worker logs")


def test_all_workers_full_or_draining() -> None:
    """Every worker at its load threshold or draining: suggest scaling up."""
    procs = [worker("worker-0", active_jobs=3), worker("worker-1", "draining", active_jobs=1)]
    text = diagnose.dispatch_path(facts(processes=procs, workers=[
        WorkerInfo("worker-0", AGENT, active_jobs=3, load=0.9)]))
    assert text.startswith("all 2 workers are full or draining (1 draining, 4 active jobs")
    assert "voiceops scale 3" in text


def test_one_free_worker_is_not_full() -> None:
    """A worker under the threshold means the pool is not full."""
    text = diagnose.dispatch_path(facts(workers=[WorkerInfo("worker-0", AGENT, load=0.9),
                                                 WorkerInfo("worker-1", AGENT, load=0.1)]))
    assert "full" not in text and "LiveKit sent no JobRequest" in text


def test_every_worker_over_target_load_is_named() -> None:
    """Every worker reporting load >= 0.7 gets no job from LiveKit, whatever its own threshold."""
    loads = [WorkerInfo("worker-0", AGENT, load=0.75), WorkerInfo("worker-1", AGENT, load=0.93)]
    for threshold in (1.0, 0.7, 0.9):
        text = diagnose.dispatch_path(facts(load_threshold=threshold, workers=loads))
        assert text.startswith("every worker reports load ≥ 0.7: LiveKit offers no job")
        assert "0.75, 0.93" in text and "workers.max_jobs" in text
    one_below = [WorkerInfo("worker-0", AGENT, load=0.69), WorkerInfo("worker-1", AGENT, load=0.9)]
    assert "load ≥ 0.7" not in diagnose.dispatch_path(facts(workers=one_below))


def test_load_threshold_one_still_full_at_target_load() -> None:
    """load_threshold = 1.0 stops the worker's own shedding, not LiveKit's 0.7 rule."""
    procs = [worker("worker-0"), worker("worker-1", "draining")]
    text = diagnose.dispatch_path(facts(load_threshold=1.0, processes=procs,
                                        workers=[WorkerInfo("worker-0", AGENT, load=0.8)]))
    assert text.startswith("all 2 workers are full or draining")


def test_media_path() -> None:
    """JobRequests arrive but nobody joins: point at the media path."""
    assert "no agent joins the room" in diagnose.dispatch_path(facts(joins_missing=True))


def test_livekit_unreachable_and_credentials_refused() -> None:
    """LiveKit problems come first and distinguish refused credentials from no answer."""
    down = observe(Reachability(), ConnectionRefusedError(111, "Connection refused"))
    assert "is unreachable" in diagnose.dispatch_path(facts(livekit=down))
    denied = observe(Reachability(), api.TwirpError("unauthenticated", "bad", status=401))
    text = diagnose.dispatch_path(facts(livekit=denied))
    assert "refused our credentials (HTTP 401 unauthenticated)" in text
    assert "LIVEKIT_API_SECRET" in text
    timeout = observe(Reachability(), TimeoutError())
    assert "unreachable (timed out)" in diagnose.dispatch_path(facts(livekit=timeout))


def test_pool_alert_diagnoses() -> None:
    """NoReadyWorkers summarises states; WorkerCrashLoop names the parked worker."""
    text = diagnose.no_ready_workers({"desired": 2, "ready": 0},
                                     [worker("worker-0", "backoff"), worker("worker-1", "parked")])
    assert "0 of 2 workers ready (1 backoff, 1 parked)" in text
    text = diagnose.crash_loop([worker("worker-1", "parked", last_exit="crash(1)")])
    assert "worker-1 parked" in text and "crash(1)" in text and "voiceops restart worker-1" in text
