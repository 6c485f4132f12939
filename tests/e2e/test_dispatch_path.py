"""The dispatch path under the real supervisor: proxy → LiveKit → worker → agent in the room."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import pytest
from livekit import api
from stack import AGENT, Stack

from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.livekit]


def list_dispatch(lk: Any, room: str) -> list[Any]:
    """Our agent's dispatches in ``room`` (a new room also holds LiveKit's unnamed default one)."""
    async def go() -> list[Any]:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
            return list(await client.agent_dispatch.list_dispatch(room))
    return [d for d in asyncio.run(go()) if d.agent_name == AGENT]


def test_dispatch_reaches_a_worker_and_the_agent_joins(shared_stack: Stack) -> None:
    """One POST: the supervisor correlates dispatch_created, job_request and agent_joined by id."""
    code, body = shared_stack.dispatch("e2e-room-1")
    assert code == 200 and body["success"] and body["agent_name"] == AGENT, body
    assert body["reused"] is False and body["dispatch_id"].startswith("AD_")
    timeline = shared_stack.wait_joined(body["dispatch_id"])
    assert timeline["room"] == "e2e-room-1"
    assert 0 <= timeline["job_request_after_s"] <= timeline["joined_after_s"]
    # The worker reports its job count on its own poll (0.25 s), which can trail agent_joined.
    wait_for(lambda: sum(p["active_jobs"] for p in shared_stack.sup.procs("worker")) >= 1,
             10, "a worker of ours to report the job")


def test_second_dispatch_to_a_room_is_reused(shared_stack: Stack, livekit_server_module: Any
                                             ) -> None:
    """Two dispatches to one room: the second says reused, and LiveKit holds one dispatch, one
    job."""
    first = shared_stack.dispatch("e2e-room-2")[1]
    shared_stack.wait_joined(first["dispatch_id"])
    code, second = shared_stack.dispatch("e2e-room-2")
    assert code == 200 and second["reused"] is True
    assert second["dispatch_id"] == first["dispatch_id"]
    dispatches = list_dispatch(livekit_server_module, "e2e-room-2")
    assert len(dispatches) == 1 and len(dispatches[0].state.jobs) == 1


def test_agent_id_reaches_the_job_metadata(shared_stack: Stack, livekit_server_module: Any
                                           ) -> None:
    """agent_id travels in the dispatch metadata to the job LiveKit hands the worker."""
    body = shared_stack.dispatch("e2e-room-3", agent_id="agent-1234")[1]
    shared_stack.wait_joined(body["dispatch_id"])
    (dispatch,) = list_dispatch(livekit_server_module, "e2e-room-3")
    assert json.loads(dispatch.metadata)["letta_agent_id"] == "agent-1234"
    assert json.loads(dispatch.state.jobs[0].metadata)["letta_agent_id"] == "agent-1234"


def test_killed_worker_is_restarted_and_serves_the_next_dispatch(stack_factory: Any) -> None:
    """kill -9 of the only worker: restarted, registered again, and the next dispatch joins."""
    stack = stack_factory(workers=1)
    (before,) = stack.sup.procs("worker")
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: next((p for p in stack.sup.procs("worker")
                                   if p["state"] == "ready" and p["pid"] != before["pid"]), None),
                     60, "a restarted, registered worker")
    assert after["restarts"] >= 1 and after["worker_id"] != before["worker_id"]
    body = stack.dispatch("e2e-after-kill")[1]
    stack.wait_joined(body["dispatch_id"])


def test_sigterm_during_a_call_lets_the_call_finish(stack_factory: Any) -> None:
    """SIGTERM to the supervisor mid-call: the worker drains, the call ends by itself, exit 0."""
    stack = stack_factory(workers=1, workers__entrypoint="e2e_entrypoints:short_call")
    body = stack.dispatch("e2e-drain")[1]
    stack.wait_joined(body["dispatch_id"])
    wait_for(lambda: list(stack.out.glob("*.started")), 30, "the call to start")
    stack.sup.remember_tree()
    stack.sup.signal(signal.SIGTERM)
    assert stack.sup.wait(60) == 0
    assert list(stack.out.glob("*.finished")), "the call was cut instead of drained"
    assert not stack.sup.log_matches(r"reason=drain_timeout"), stack.sup.stderr()[-2000:]
    # stack_factory's teardown asserts that no process the supervisor started is left.
