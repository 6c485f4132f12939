"""Reachability policy and pool-check policy (pure)."""

from __future__ import annotations

import aiohttp
from livekit import api

from voiceops.monitor.poolcheck import check_pool
from voiceops.monitor.reach import Failure, Reachability, classify, observe


def test_classify_failures() -> None:
    """Refused connections and timeouts are unreachable; 401 is credentials; 503 a server error."""
    assert classify(ConnectionRefusedError()) is Failure.UNREACHABLE
    assert classify(TimeoutError()) is Failure.UNREACHABLE
    assert classify(aiohttp.ServerDisconnectedError()) is Failure.UNREACHABLE
    assert classify(api.TwirpError("unknown", "", status=401)) is Failure.CREDENTIALS
    assert classify(api.TwirpError("unavailable", "", status=503)) is Failure.SERVER_ERROR


def test_fires_after_two_failures_and_resolves_on_success() -> None:
    """One failure is a blip; two in a row fire; one success resolves."""
    s = observe(Reachability(), TimeoutError())
    assert not s.firing and s.failures == 1
    s = observe(s, TimeoutError())
    assert s.firing
    s = observe(s, None)
    assert not s.firing and s.failures == 0


def test_no_ready_workers_after_grace() -> None:
    """No ready worker fires only after the grace period, and resets when one is ready."""
    status = {"pool": {"desired": 2, "ready": 0}, "processes": []}
    v = check_pool(status, None, 100.0, 30.0)
    assert v.no_ready_since == 100.0 and not v.no_ready_fire
    v = check_pool(status, v.no_ready_since, 130.0, 30.0)
    assert v.no_ready_fire
    v = check_pool({"pool": {"desired": 2, "ready": 1}}, v.no_ready_since, 131.0, 30.0)
    assert v.no_ready_since is None and not v.no_ready_fire
    assert check_pool({"pool": {"desired": 0, "ready": 0}}, None, 0.0, 0.0).no_ready_since is None


def test_parked_processes_are_reported() -> None:
    """Any parked process is a crash loop."""
    status = {"pool": {"desired": 2, "ready": 1},
              "processes": [{"name": "worker-0", "state": "ready"},
                            {"name": "worker-1", "state": "parked"}]}
    assert [p["name"] for p in check_pool(status, None, 0.0, 1.0).parked] == ["worker-1"]
