"""The real ``python -m voiceops.worker`` against a LiveKit server: registration, dispatches,
probes, drain and entrypoints, asserted through the events it sends to a supervisor socket."""

from __future__ import annotations

import json
import signal
from typing import Any

import aiohttp
import psutil
import pytest
from livekit import api
from livekit.protocol import agent

from voiceops.events import AgentJoined, JobEnded, JobRequest, Jobs, Ready
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.process, pytest.mark.livekit]

READY_TIMEOUT_S = 45.0
JOB_TIMEOUT_S = 45.0


async def dispatch(lkapi: Any, agent_name: str, room: str, metadata: str) -> Any:
    return await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata))


async def test_registration_reports_ready_with_worker_id(start_worker: Any, sink: EventRecorder,
                                                         agent_name: str) -> None:
    """Once LiveKit confirms the registration, `ready` names the worker id, name and port."""
    worker = await start_worker()
    ready = await sink.wait_for(Ready, READY_TIMEOUT_S)
    assert ready.worker_id.startswith("AW_")
    assert ready.agent_name == agent_name
    assert ready.process == "worker-test" and ready.pid == worker.proc.pid
    assert ready.http_port not in (0, 8081)
    url = f"http://127.0.0.1:{ready.http_port}/worker"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        info = json.loads(await resp.text())
    assert info["agent_name"] == agent_name
    jobs = await sink.wait_for(Jobs, 10.0)
    assert jobs.active_jobs == 0


def forkserver(worker_pid: int) -> psutil.Process | None:
    found = [p for p in psutil.Process(worker_pid).children()
             if "multiprocessing.forkserver" in " ".join(p.cmdline())]
    return found[0] if found else None


async def test_dispatch_reaches_custom_entrypoint_with_metadata(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """A dispatch gives job_request then agent_joined; a custom entrypoint sees the metadata."""
    worker = await start_worker(entrypoint="wk_entrypoints:record_metadata", no_human_timeout_s=2)
    ready = await sink.wait_for(Ready, READY_TIMEOUT_S)
    metadata = json.dumps({"letta_agent_id": "agent-123"})
    d = await dispatch(lkapi, agent_name, "wk-room-meta", metadata)

    req = await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=d.id)
    assert (req.room, req.agent_name, req.probe, req.decision, req.worker_id) == (
        "wk-room-meta", agent_name, False, "accepted", ready.worker_id)
    joined = await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)
    assert joined.job_id == req.job_id and joined.room == "wk-room-meta"
    assert joined.identity == f"agent-{req.job_id}"
    assert sink.received.index(req) < sink.received.index(joined)
    recorded = worker.out_dir / f"{req.job_id}.json"
    assert json.loads(recorded.read_text(encoding="utf-8")) == {"letta_agent_id": "agent-123"}
    # Every job process is a fork of the forkserver: it runs without the VAD and 244 MB of
    # end-of-turn weights livekit-agents would preload there (390 MB of RSS with them).
    server = forkserver(worker.proc.pid)
    assert server is not None
    assert server.environ().get("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE") == "0"
    assert server.memory_info().rss < 250 * 2**20, server.memory_info()

    # Nobody joins the room: the agent leaves after its no-human timeout and the count drops.
    ended = await sink.wait_for(JobEnded, JOB_TIMEOUT_S, job_id=req.job_id)
    assert ended.outcome == "success" and ended.dispatch_id == d.id
    busy = await sink.wait_for(Jobs, 10.0, active_jobs=1)
    await sink.wait_for(Jobs, 10.0, after=busy, active_jobs=0)


async def test_probes_start_no_job_process(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """livekit-agents reserves a slot for every offer; voiceops starts a job process ahead only
    for an accepted one. With one warm process, three probes (declined at once) and one job:
    the worker starts exactly two job processes, the warm one and the one started ahead when
    the job was accepted (each probe started one, closed again, before)."""
    worker = await start_worker(entrypoint="wk_entrypoints:record_metadata", no_human_timeout_s=2,
                                num_idle_processes=1)
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    await wait_for_async(lambda: "process initialized" in worker.log_tail(), 30.0,
                         "the warm job process")
    probe = json.dumps({"voiceops_probe": True, "mode": "request"})
    for i in range(3):
        d = await dispatch(lkapi, agent_name, f"wk-probe-np-{i}", probe)
        req = await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=d.id)
        assert req.decision == "probe"
    d = await dispatch(lkapi, agent_name, "wk-probe-np-job", "")
    await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)
    # livekit-agents logs this line in the worker as it starts each job process
    log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert log.count("initializing process") == 2, log


async def test_probe_request_is_declined_without_a_job(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """A request probe is reported, then declined: LiveKit ends the job and nothing joins."""
    await start_worker()
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-probe-req",
                       json.dumps({"voiceops_probe": True, "mode": "request"}))
    req = await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=d.id)
    assert (req.probe, req.decision) == (True, "probe")

    async def job_state() -> Any:
        found = await lkapi.agent_dispatch.list_dispatch("wk-probe-req")
        jobs = [j for x in found if x.id == d.id for j in x.state.jobs]
        return jobs[0].state if jobs else None

    state = await wait_for_async(job_state, 15.0, "the job declined", 0.2)
    # Declined with terminate: LiveKit records the job as answered (JS_SUCCESS, ended at once).
    assert state.status == agent.JS_SUCCESS and state.ended_at > 0
    assert not sink.of_type(AgentJoined, dispatch_id=d.id)
    assert not sink.of_type(JobEnded, dispatch_id=d.id)
    assert not [e for e in sink.received if isinstance(e, Jobs) and e.active_jobs > 0]


async def test_probe_join_joins_and_leaves_at_once(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """A join probe joins the room and ends at once, without waiting for a human."""
    await start_worker(no_human_timeout_s=300)
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-probe-join",
                       json.dumps({"voiceops_probe": True, "mode": "join"}))
    req = await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=d.id)
    assert (req.probe, req.decision) == (True, "probe")
    await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)
    ended = await sink.wait_for(JobEnded, 20.0, dispatch_id=d.id)
    assert ended.outcome == "success"


async def test_sigterm_drains_running_job_then_exits_zero(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """SIGTERM lets a running job finish on its own, then the worker exits 0 leaving nothing."""
    worker = await start_worker(no_human_timeout_s=6)
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-drain", "")
    await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)

    worker.signal(signal.SIGTERM)
    code = await worker.wait_exit(60.0)
    assert code == 0, worker.log_tail()
    ended = await sink.wait_for(JobEnded, 5.0, dispatch_id=d.id)  # already queued on the socket
    assert ended.outcome == "success", worker.log_tail()  # a job cut by the worker: "cancelled"
    await worker.assert_group_gone()


async def test_second_signal_exits_at_once(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """A second SIGTERM while draining exits non-zero at once and kills the job processes."""
    worker = await start_worker(entrypoint="wk_entrypoints:hold")
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-twice", "")
    await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)

    worker.signal(signal.SIGTERM)
    await wait_for_async(lambda: "draining" in worker.log_tail(), 10.0, "draining logged", 0.2)
    worker.signal(signal.SIGTERM)
    code = await worker.wait_exit(10.0)
    assert code == 1
    await worker.assert_group_gone()


async def test_failing_entrypoint_reports_failed_job(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """An entrypoint that raises ends its job as failed and never reports a join."""
    await start_worker(entrypoint="wk_entrypoints:crash")
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-crash", "")
    ended = await sink.wait_for(JobEnded, JOB_TIMEOUT_S, dispatch_id=d.id)
    assert ended.outcome == "failed"
    assert not sink.of_type(AgentJoined, dispatch_id=d.id)


async def test_drain_timeout_cuts_the_job_and_still_exits_zero(
        start_worker: Any, sink: EventRecorder, agent_name: str, lkapi: Any) -> None:
    """A job outlasting workers.drain_timeout_s is closed (cancelled); the worker exits 0."""
    worker = await start_worker(entrypoint="wk_entrypoints:hold", drain_timeout_s=1)
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-drain-cut", "")
    await sink.wait_for(AgentJoined, JOB_TIMEOUT_S, dispatch_id=d.id)

    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(40.0) == 0, worker.log_tail()
    ended = await sink.wait_for(JobEnded, 5.0, dispatch_id=d.id)
    assert ended.outcome == "cancelled"
    await worker.assert_group_gone()


@pytest.mark.faults
async def test_refused_media_ends_job_as_connect_failed(
        livekit_server: Any, start_worker: Any, sink: EventRecorder, agent_name: str,
        lkapi: Any) -> None:
    """When the media path is dead the job ends as connect_failed, with no agent_joined: the
    failed attempt leaves the room, so LiveKit terminates the job while the SDK retries."""
    livekit_server.faults.set(refuse_media=True)
    await start_worker()
    await sink.wait_for(Ready, READY_TIMEOUT_S)
    d = await dispatch(lkapi, agent_name, "wk-no-media", "")
    await sink.wait_for(JobRequest, JOB_TIMEOUT_S, dispatch_id=d.id)
    # The first ICE attempt gives up after 15 s and leaves; the server then terminates the job
    # (without that rule, livekit's FFI would give up after 3 attempts of 15 s each).
    ended = await sink.wait_for(JobEnded, 150.0, dispatch_id=d.id)
    assert ended.outcome == "connect_failed"
    assert not sink.of_type(AgentJoined, dispatch_id=d.id)
