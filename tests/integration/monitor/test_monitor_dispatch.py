"""The monitor against a LiveKit server (emulator) and real worker processes."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from livekit import api
from monitor_helpers import (
    HERE,
    event_socket,
    monitor_config,
    spawn,
    spawn_voiceops_worker,
)

from voiceops.events import DispatchCreated, Ready
from voiceops.monitor import alerts as A
from voiceops.testing.waiting import wait_for_async
from voiceops.testing.webhook import WebhookReceiver

pytestmark = [pytest.mark.livekit, pytest.mark.process,
              pytest.mark.usefixtures("no_leaked_children")]

DEADLINE_S = 2.0
INTERVAL_S = 2.0
TIMEOUT_S = 1.0
WORKER_READY_S = 60.0


def agent() -> str:
    return f"mon-{uuid.uuid4().hex[:8]}"


async def dispatch(server: Any, agent_name: str, room: str) -> DispatchCreated:
    """What the proxy does: CreateDispatch, then the dispatch_created event."""
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        started = time.monotonic()
        d = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=agent_name, room=room))
    return DispatchCreated(dispatch_id=d.id, room=room, agent_name=agent_name,
                           latency_s=time.monotonic() - started, process="proxy")


@pytest.mark.faults
async def test_swallowed_job_requests_alert_and_resolve(
        livekit_server: Any, harness: Any, tmp_path: Path,
        webhook_receiver: WebhookReceiver) -> None:
    """Swallowed JobRequests fire DispatchUnanswered within deadline + 1 s and HeartbeatFailed
    within two intervals, with webhooks; clearing the fault resolves both."""
    name = agent()
    cfg = monitor_config(livekit_server, agent_name=name, deadline_s=DEADLINE_S,
                         interval_s=INTERVAL_S, timeout_s=TIMEOUT_S,
                         webhooks=(webhook_receiver.url,))
    h = await harness(cfg)
    h.children.append(await spawn_voiceops_worker(livekit_server, name, tmp=tmp_path,
                                                  process="worker-0", events_path=h.socket.path))
    ok = {"result": "ok"}
    await wait_for_async(lambda: h.value("voiceops_heartbeat_probes_total", **ok) >= 1,
                         WORKER_READY_S, "a first successful heartbeat probe")

    livekit_server.faults.set(swallow_job_requests=True)
    fault_at = time.monotonic()
    ev = await dispatch(livekit_server, name, "call-1")
    h.monitor.on_event(ev)
    fired = await wait_for_async(lambda: h.alert(A.DISPATCH_UNANSWERED), DEADLINE_S + 1.0,
                                 "DispatchUnanswered")
    assert fired["labels"] == {"room": "call-1", "dispatch_id": ev.dispatch_id}
    assert ev.dispatch_id in fired["diagnosis"] and "sent no JobRequest" in fired["diagnosis"]
    timeline = h.monitor.dispatch_timeline(ev.dispatch_id)  # what the debug page shows
    assert timeline is not None and "sent no JobRequest" in timeline["diagnosis"]
    assert h.value("voiceops_dispatch_unanswered_total", agent_name=name, source="proxy") == 1

    two_intervals = 2 * INTERVAL_S + TIMEOUT_S - (time.monotonic() - fault_at) + 1.0
    await wait_for_async(lambda: h.alert(A.HEARTBEAT_FAILED), two_intervals, "HeartbeatFailed")
    assert h.value("voiceops_heartbeat_probes_total", result="no_job_request") >= 2
    assert h.value("voiceops_alert_active", alert=A.HEARTBEAT_FAILED) == 1

    livekit_server.faults.clear()
    h.monitor.on_event(await dispatch(livekit_server, name, "call-2"))
    await wait_for_async(lambda: not h.alert(A.DISPATCH_UNANSWERED), 15,
                         "DispatchUnanswered resolved")
    await wait_for_async(lambda: not h.alert(A.HEARTBEAT_FAILED), INTERVAL_S + TIMEOUT_S + 5,
                         "HeartbeatFailed resolved")
    assert h.value("voiceops_dispatch_job_request_seconds_count", agent_name=name) >= 1
    assert_webhooks(webhook_receiver, (A.DISPATCH_UNANSWERED, A.HEARTBEAT_FAILED))


def assert_webhooks(receiver: WebhookReceiver, alerts: tuple[str, ...]) -> None:
    """The receiver got the generic JSON for each alert firing and resolving."""
    for alert in alerts:
        for status in ("firing", "resolved"):
            hit = receiver.wait_for(
                lambda d, a=alert, s=status: isinstance(d.body, dict)
                and d.body.get("alert") == a and d.body.get("status") == s,
                timeout_s=30)  # a deadline, not a delay: delivery is async and the CI box is busy
            assert hit.body["source"] == "voiceops" and hit.body["diagnosis"]


async def spawn_own_worker(server: Any, h: Any, tmp_path: Path, *args: str) -> Any:
    """other_name_worker.py as worker-0 (args: agent name, load), reporting to the harness."""
    return await spawn(
        [sys.executable, str(HERE / "other_name_worker.py"), server.url, server.api_key, *args],
        log_dir=tmp_path, name="own-worker", env={"LIVEKIT_API_SECRET": server.api_secret,
                                                  "VOICEOPS_EVENTS": h.socket.path,
                                                  "VOICEOPS_PROCESS": "worker-0"})


async def test_other_agent_name_is_diagnosed(livekit_server: Any, harness: Any,
                                             tmp_path: Path) -> None:
    """A worker program hard-coding 'voice' → HeartbeatFailed whose diagnosis names both names."""
    cfg = monitor_config(livekit_server, agent_name="letta-voice-agent", interval_s=INTERVAL_S,
                         timeout_s=TIMEOUT_S)
    h = await harness(cfg)
    h.children.append(await spawn_own_worker(livekit_server, h, tmp_path))
    await wait_for_async(lambda: h.monitor.worker_ports, WORKER_READY_S, "the worker's ready event")
    await wait_for_async(lambda: h.alert(A.HEARTBEAT_FAILED), 3 * INTERVAL_S + 5, "HeartbeatFailed")
    diagnosis = h.alert(A.HEARTBEAT_FAILED)["diagnosis"]  # type: ignore[index]
    assert "workers registered as 'voice' but dispatches ask for 'letta-voice-agent'" in diagnosis


async def test_workers_at_target_load_are_diagnosed(livekit_server: Any, harness: Any,
                                                    tmp_path: Path) -> None:
    """A worker reporting load 0.8 (still AVAILABLE) gets no JobRequest from LiveKit, whose
    target load is 0.7: HeartbeatFailed's diagnosis names that case and the load."""
    name = agent()
    cfg = monitor_config(livekit_server, agent_name=name, interval_s=INTERVAL_S,
                         timeout_s=TIMEOUT_S)
    h = await harness(cfg)
    h.children.append(await spawn_own_worker(livekit_server, h, tmp_path, name, "0.8"))
    await wait_for_async(lambda: h.monitor.worker_ports, WORKER_READY_S, "the worker's ready event")
    await wait_for_async(lambda: h.alert(A.HEARTBEAT_FAILED), 3 * INTERVAL_S + 5, "HeartbeatFailed")
    diagnosis = h.alert(A.HEARTBEAT_FAILED)["diagnosis"]  # type: ignore[index]
    assert "every worker reports load ≥ 0.7: LiveKit offers no job (loads 0.80" in diagnosis
    assert h.value("voiceops_heartbeat_probes_total", result="no_job_request") >= 1


async def test_dispatch_answered_by_a_worker_we_do_not_own(livekit_server: Any, harness: Any,
                                                           tmp_path: Path) -> None:
    """A worker the supervisor does not own answers: ListDispatch confirms it, no false alert."""
    name = agent()
    cfg = monitor_config(livekit_server, agent_name=name, deadline_s=DEADLINE_S,
                         interval_s=INTERVAL_S, timeout_s=TIMEOUT_S)
    # Another host's supervisor hears this worker's events; our monitor never does.
    elsewhere = event_socket(lambda _event: None)
    try:
        worker = await spawn_voiceops_worker(livekit_server, name, tmp=tmp_path,
                                             process="worker-0", events_path=elsewhere.path)
        try:
            await wait_for_async(lambda: any(isinstance(e, Ready) for e in elsewhere.received),
                                 WORKER_READY_S, "the other host's worker registered")
        finally:
            h = await harness(cfg, desired=0)
            h.children.append(worker)
    finally:
        elsewhere.close()
    await wait_for_async(lambda: h.value("voiceops_heartbeat_probes_total", result="ok") >= 1,
                         WORKER_READY_S, "a probe answered elsewhere")
    ev = await dispatch(livekit_server, name, "call-elsewhere")
    h.monitor.on_event(ev)
    entry = h.monitor.dispatches.correlator.get(ev.dispatch_id)
    assert entry is not None
    await wait_for_async(lambda: entry.phase not in {"waiting", "confirming"},
                         DEADLINE_S + 5, "the ListDispatch confirmation")
    assert entry.phase in ("requested", "joined")
    assert h.alert(A.DISPATCH_UNANSWERED) is None and h.alert(A.HEARTBEAT_FAILED) is None
    assert h.value("voiceops_dispatch_unanswered_total", agent_name=name, source="proxy") == 0
    assert h.value("voiceops_heartbeat_probes_total", result="no_job_request") == 0


@pytest.mark.faults
async def test_redispatch_once(livekit_server: Any, harness: Any) -> None:
    """With redispatch_unanswered the unanswered dispatch is deleted and re-created once, and
    the alert says so; the re-created one is not re-created again."""
    name = agent()
    cfg = monitor_config(livekit_server, agent_name=name, deadline_s=1.0, heartbeat=False,
                         redispatch=True)
    h = await harness(cfg, desired=0)
    livekit_server.faults.set(swallow_job_requests=True)
    ev = await dispatch(livekit_server, name, "call-re")
    h.monitor.on_event(ev)
    await wait_for_async(lambda: h.alert(A.DISPATCH_UNANSWERED), 3, "DispatchUnanswered")
    diagnosis = h.alert(A.DISPATCH_UNANSWERED)["diagnosis"]
    assert "re-dispatched once as AD_" in diagnosis
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                              livekit_server.api_secret) as lk:
        listed = [d.id for d in await lk.agent_dispatch.list_dispatch("call-re")
                  if d.agent_name == name]
    assert len(listed) == 1 and listed[0] != ev.dispatch_id and listed[0] in diagnosis
    await wait_for_async(lambda: h.value("voiceops_dispatch_unanswered_total", agent_name=name,
                                     source="proxy") == 2, 4, "the re-created one unanswered")
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                              livekit_server.api_secret) as lk:
        again = await lk.agent_dispatch.list_dispatch("call-re")
    assert [d.id for d in again if d.agent_name == name] == listed


async def test_join_mode_probe_measures_time_to_join(livekit_server: Any, harness: Any,
                                                     tmp_path: Path) -> None:
    """heartbeat.mode = "join": the probe's agent joins the room; the probe is ok and
    time-to-join is observed with no traffic."""
    name = agent()
    cfg = monitor_config(livekit_server, agent_name=name, interval_s=3.0, timeout_s=2.5,
                         mode="join")
    h = await harness(cfg)
    h.children.append(await spawn_voiceops_worker(livekit_server, name, tmp=tmp_path,
                                                  process="worker-0", events_path=h.socket.path))
    await wait_for_async(lambda: h.value("voiceops_heartbeat_probes_total", result="ok") >= 1,
                         WORKER_READY_S, "a successful join probe")
    assert h.value("voiceops_time_to_join_seconds_count", agent_name=name) >= 1
    assert h.value("voiceops_heartbeat_last_success_timestamp_seconds") > 0
