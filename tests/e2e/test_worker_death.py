"""Issue 11, item 4: a worker that dies with calls is counted and explained at once."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from e2e_entrypoints import HOLD_JOIN

from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.livekit]
DEADLINE_S = 5.0  # monitor.job_request_deadline_s in stack_config


def test_kill_9_with_live_and_joining_calls_is_counted_and_explained(stack_factory: Any) -> None:
    """kill -9 of the only worker holding 2 live calls and 1 dispatch between JobRequest and
    join: within the job-request deadline the calls are counted as cut, the joining dispatch is
    alerted ("worker-0 died (SIGKILL) holding 2 calls and 1 joining") and counted unanswered,
    and it is re-dispatched once; the re-dispatch joins after the restart."""
    stack = stack_factory(workers=1, workers__entrypoint="e2e_entrypoints:long_call",
                          monitor__redispatch_unanswered=True)
    (stack.out / HOLD_JOIN).touch()
    for room in ("e2e-died-1", "e2e-died-2"):
        stack.wait_joined(stack.dispatch(room)[1]["dispatch_id"])
    joining = stack.dispatch("e2e-died-joining")[1]["dispatch_id"]
    wait_for(lambda: (tl := stack.timeline(joining)) and tl["job_request_after_s"] is not None,
             30, "the third dispatch's JobRequest")
    (worker,) = stack.sup.procs("worker")
    wait_for(lambda: stack.sup.procs("worker")[0]["active_jobs"] == 3, 15, "three jobs held")
    (stack.out / HOLD_JOIN).unlink()  # the re-dispatched job may join
    os.kill(worker["pid"], signal.SIGKILL)
    killed_at = time.monotonic()

    def counted() -> bool:
        m = stack.sup.metric
        return (m("voiceops_calls_cut_total", reason="worker_died") == 2
                and m("voiceops_jobs_total", outcome="cut") == 3
                and m("voiceops_dispatch_unanswered_total", source="proxy") == 1
                and stack.alert("DispatchUnanswered") is not None)
    wait_for(counted, DEADLINE_S, "the counts and the alert within the job-request deadline")
    assert time.monotonic() - killed_at < DEADLINE_S
    alert = stack.alert("DispatchUnanswered")
    assert alert["labels"]["dispatch_id"] == joining and alert["labels"]["reason"] == "worker_died"
    assert "worker-0 died (SIGKILL) holding 2 calls and 1 joining" in alert["diagnosis"]
    assert stack.sup.log_matches(r"worker_died_with_jobs: worker-0 died \(SIGKILL\)")
    # Once the restarted worker is ready (its JobRequest then resolves the alert).
    redispatched = wait_for(lambda: stack.sup.log_matches(
        r"re-dispatched once as (AD_\w+)"), 90, "the re-dispatch")
    stack.wait_joined(redispatched[0].group(1), timeout_s=60)
    restarted = wait_for(lambda: next((p for p in stack.sup.procs("worker")
                                       if p["pid"] != worker["pid"]), None), 30, "the restart")
    assert restarted["last_exit"] == "signal(SIGKILL)"  # not called OOM: the kernel saw none
