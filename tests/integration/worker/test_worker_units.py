"""The worker's pure decisions: probe metadata, request answers, job outcomes, entrypoint
resolution, the placeholder agent's stay-or-leave machine, and the declined-offer hook."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import utils
from livekit.protocol import agent, models

from voiceops.agent.basic import letta_agent_id
from voiceops.agent.presence import Presence, Seen, next_presence, no_human_timeout_s
from voiceops.worker.entry import EntrypointError, classify_outcome, resolve, wrap
from voiceops.worker.observed import ObservedAgentServer
from voiceops.worker.options import effective_load_threshold, jobs_load
from voiceops.worker.probe import (
    Answer,
    Decision,
    ProbeMode,
    decide,
    parse_metadata,
    probe_metadata,
    probe_mode,
)


@pytest.mark.parametrize(("metadata", "expected"), [
    ("", None),
    ("not json", None),
    ("[1, 2]", None),
    ('{"letta_agent_id": "agent-1"}', None),
    ('{"voiceops_probe": "true"}', None),  # only a JSON true marks a probe
    ('{"voiceops_probe": true}', ProbeMode.REQUEST),
    ('{"voiceops_probe": true, "mode": "join"}', ProbeMode.JOIN),
    ('{"voiceops_probe": true, "mode": "bogus"}', ProbeMode.REQUEST),
])
def test_probe_mode_reads_only_explicit_markers(metadata: str, expected: ProbeMode | None) -> None:
    """Only {"voiceops_probe": true} marks a probe; an unknown mode means request mode."""
    assert probe_mode(metadata) is expected


def test_probe_metadata_round_trips() -> None:
    """The heartbeat's probe metadata is recognised by the worker in both modes."""
    for mode in ProbeMode:
        assert probe_mode(probe_metadata(mode)) is mode
    assert parse_metadata(probe_metadata("join")) == {"voiceops_probe": True, "mode": "join"}


@pytest.mark.parametrize(("probe", "draining", "expected"), [
    (None, False, (Decision.ACCEPTED, Answer.ACCEPT)),
    (ProbeMode.REQUEST, False, (Decision.PROBE, Answer.DECLINE)),
    (ProbeMode.JOIN, False, (Decision.PROBE, Answer.ACCEPT)),
    (None, True, (Decision.REJECTED, Answer.REJECT)),
    (ProbeMode.JOIN, True, (Decision.REJECTED, Answer.REJECT)),
])
def test_decide(probe: ProbeMode | None, draining: bool,
                expected: tuple[Decision, Answer]) -> None:
    """Jobs are accepted, request probes declined for good; a draining worker passes on."""
    assert decide(probe, draining=draining) == expected


@pytest.mark.parametrize(("flags", "reason", "outcome"), [
    ({}, "room disconnected", "success"),
    ({}, "user requested", "success"),
    ({}, "parent process shutdown", "cancelled"),
    ({}, "job crashed", "failed"),
    ({"errored": True}, "job crashed", "failed"),
    ({"cancelled": True}, "room disconnected", "cancelled"),
    ({"connect_failed": True, "errored": True}, "job crashed", "connect_failed"),
])
def test_classify_outcome(flags: dict[str, bool], reason: str, outcome: str) -> None:
    """connect_failed beats failed beats cancelled; a job that ended by itself succeeded."""
    args = {"connect_failed": False, "errored": False, "cancelled": False, **flags}
    assert classify_outcome(**args, reason=reason) == outcome


def test_resolve_names_the_key_for_every_bad_spec() -> None:
    """Each kind of bad entrypoint string gives an error that starts with workers.entrypoint."""
    for spec in ("", "module_only", ":fn", "voiceops.agent:", "no_such_mod_q:fn",
                 "voiceops.agent:missing", "voiceops.agent.basic:letta_agent_id"):
        with pytest.raises(EntrypointError, match=r"^workers\.entrypoint: "):
            resolve(spec)


def test_resolve_and_wrap_the_default_entrypoint() -> None:
    """The default entrypoint resolves; its wrapped form pickles for the forkserver."""
    import pickle

    from voiceops.agent import entrypoint

    assert resolve("voiceops.agent:entrypoint") is entrypoint
    wrapped = pickle.loads(pickle.dumps(wrap("voiceops.agent:entrypoint")))
    assert wrapped.args == ("voiceops.agent:entrypoint",)


def test_load_threshold_is_at_most_the_server_target() -> None:
    """1.0 turns the worker's own shedding off; 0.7 < t < 1 becomes 0.7 (LiveKit's target load)."""
    assert effective_load_threshold(1.0) == math.inf
    assert effective_load_threshold(0.9) == 0.7
    assert effective_load_threshold(0.7) == 0.7
    assert effective_load_threshold(0.5) == 0.5


def test_jobs_load_reaches_target_at_max_jobs() -> None:
    """With workers.max_jobs = N the reported load is 0.7 at N jobs: LiveKit stops there."""
    assert jobs_load(0, 4) == 0.0
    assert jobs_load(2, 4) == pytest.approx(0.35)
    assert jobs_load(4, 4) == pytest.approx(0.7)
    assert jobs_load(40, 4) == 1.0


def test_presence_machine() -> None:
    """The placeholder agent waits for a human, stays while one is there, and leaves after."""
    s = next_presence(Presence.WAITING, Seen.NOBODY)
    assert s is Presence.WAITING
    assert next_presence(Presence.WAITING, Seen.TIMED_OUT) is Presence.DONE
    s = next_presence(s, Seen.HUMANS)
    assert s is Presence.ATTENDED
    assert next_presence(s, Seen.TIMED_OUT) is Presence.ATTENDED
    assert next_presence(s, Seen.NOBODY) is Presence.DONE
    assert next_presence(s, Seen.ROOM_CLOSED) is Presence.DONE
    assert next_presence(Presence.DONE, Seen.HUMANS) is Presence.DONE


def test_letta_agent_id_tolerates_bad_metadata() -> None:
    """The agent id comes from the metadata JSON; anything malformed gives an empty id."""
    assert letta_agent_id(json.dumps({"letta_agent_id": "agent-9"})) == "agent-9"
    for bad in ("", "{", '"agent-9"', '{"letta_agent_id": 9}'):
        assert letta_agent_id(bad) == ""
    assert no_human_timeout_s({"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "2.5"}) == 2.5
    assert no_human_timeout_s({"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "x"}) == 60.0


async def test_offer_declined_by_livekit_itself_is_reported() -> None:
    """An offer livekit-agents itself answers unavailable (draining) reaches on_declined.

    This guards the two private livekit-agents 1.8.9 methods ObservedAgentServer relies on."""
    declined: list[agent.Job] = []
    server = ObservedAgentServer(on_declined=declined.append, ws_url="ws://127.0.0.1:1",
                                 api_key="k", api_secret="s")
    server._loop = asyncio.get_running_loop()
    server._msg_chan = utils.aio.Chan[agent.WorkerMessage](8)
    server._job_lifecycle_tasks = set()
    server._connecting = False
    server._draining = True
    job = agent.Job(id="AJ_x", dispatch_id="AD_x", room=models.Room(name="r"))
    server._handle_availability(agent.AvailabilityRequest(job=job))
    sent = await asyncio.wait_for(server._msg_chan.recv(), 5.0)
    assert sent.availability.job_id == "AJ_x" and not sent.availability.available
    assert [j.id for j in declined] == ["AJ_x"]
    server.note_decided("AJ_y")  # an offer our handler answered is not reported twice
    server._handle_availability(agent.AvailabilityRequest(job=agent.Job(id="AJ_y")))
    await asyncio.wait_for(server._msg_chan.recv(), 5.0)
    assert [j.id for j in declined] == ["AJ_x"]


def test_an_agent_nobody_called_leaves_when_its_worker_drains() -> None:
    """Waiting for a first caller ends when the worker drains; a live call carries on."""
    assert next_presence(Presence.WAITING, Seen.WORKER_DRAINING) is Presence.DONE
    assert next_presence(Presence.ATTENDED, Seen.WORKER_DRAINING) is Presence.ATTENDED


def test_drain_flag_travels_from_worker_to_job_by_environment(tmp_path: Path) -> None:
    """The worker names the flag in the environment; the job sees it only once it is marked."""
    from voiceops.worker import drainflag

    env = {"VOICEOPS_EVENTS": str(tmp_path / "events.sock")}
    drainflag.mark(drainflag.flag_path(env, os.getpid()))  # a stale flag of a killed worker
    path = drainflag.install(env)
    assert path.parent == tmp_path and not drainflag.worker_draining(env)
    drainflag.mark(path)
    assert drainflag.worker_draining(env)
    drainflag.clear(path)
    assert not drainflag.worker_draining(env)


async def test_an_accepted_offer_reports_a_load_counting_it_before_the_answer() -> None:
    """With ``reported_load`` (workers.max_jobs), an offer that reserves a slot is followed at
    once by an UpdateWorkerStatus whose load counts it, sent before the availability answer."""
    server = ObservedAgentServer(on_declined=lambda job: None, ws_url="ws://127.0.0.1:1",
                                 api_key="k", api_secret="s", load_fnc=lambda: 0.0,
                                 load_threshold=math.inf,
                                 reported_load=lambda: jobs_load(server._reserved_slots, 10))
    server._loop = asyncio.get_running_loop()
    server._msg_chan = utils.aio.Chan[agent.WorkerMessage](8)
    server._job_lifecycle_tasks = set()
    server._connecting = False
    server._devmode = False
    server._simulation = False
    server._reserved_slots = 0
    server._worker_load = 0.0
    server._previous_status = agent.WorkerStatus.WS_AVAILABLE
    server._proc_pool = types.SimpleNamespace(processes=[])  # no job process yet
    answer = asyncio.Event()

    async def request_fnc(req: Any) -> None:
        await answer.wait()
        await req.reject()

    server._request_fnc = request_fnc
    server._handle_availability(agent.AvailabilityRequest(job=agent.Job(id="AJ_b")))
    sent = await asyncio.wait_for(server._msg_chan.recv(), 5.0)
    assert sent.WhichOneof("message") == "update_worker", sent
    assert sent.update_worker.load == pytest.approx(jobs_load(1, 10))
    answer.set()
    sent = await asyncio.wait_for(server._msg_chan.recv(), 5.0)
    assert sent.availability.job_id == "AJ_b" and not sent.availability.available


def test_job_process_setup_starts_the_rtc_runtime() -> None:
    """The job process's set-up (``run_setup``) starts livekit's rtc FFI runtime in that process,
    so a job's first ``ctx.connect()`` does not pay for it; checked in a fresh interpreter."""
    code = ("import os\n"
            "from livekit.rtc._ffi_client import FfiClient\n"
            "from voiceops.worker.entry import run_setup\n"
            "assert FfiClient._instance is None, 'started before the set-up'\n"
            "run_setup('voiceops.agent.basic:entrypoint', None)\n"
            "assert FfiClient._instance is not None and FfiClient._instance._pid == os.getpid()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
