"""LiveKitUnreachable fires and resolves; credentials refused are told apart; Alertmanager."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil
import pytest
from monitor_helpers import monitor_config

from voiceops.monitor import alerts as A
from voiceops.testing.waiting import wait_for_async

pytestmark = [pytest.mark.livekit, pytest.mark.usefixtures("no_leaked_children")]

FIRE_WITHIN_S = 6.0  # two failed checks 0.5 s apart, each bounded by a 2 s timeout


@pytest.mark.process
@pytest.mark.faults
async def test_livekit_down_then_back(livekit_server: Any, livekit_server_factory: Any,
                                      harness: Any) -> None:
    """Stopping LiveKit fires LiveKitUnreachable ('unreachable'); a server back on the port
    resolves it."""
    h = await harness(monitor_config(livekit_server, agent_name="a", heartbeat=False), desired=0)
    await wait_for_async(
        lambda: h.monitor.probing.livekit.failures == 0 and not h.alert(A.LIVEKIT_UNREACHABLE),
        5,
        "LiveKit reachable at first",
    )
    port = livekit_server.url.rsplit(":", 1)[1]
    os.kill(livekit_server.pid, signal.SIGTERM)
    psutil.wait_procs([psutil.Process(livekit_server.pid)], timeout=10)
    await wait_for_async(lambda: h.alert(A.LIVEKIT_UNREACHABLE), FIRE_WITHIN_S,
                         "LiveKitUnreachable")
    fired = h.alert(A.LIVEKIT_UNREACHABLE)
    assert "is unreachable" in fired["diagnosis"] and livekit_server.url in fired["diagnosis"]
    assert h.value("voiceops_alert_active", alert=A.LIVEKIT_UNREACHABLE) == 1

    livekit_server_factory("--port", port)
    await wait_for_async(lambda: not h.alert(A.LIVEKIT_UNREACHABLE), FIRE_WITHIN_S,
                         "LiveKitUnreachable resolved")
    assert h.value("voiceops_alert_active", alert=A.LIVEKIT_UNREACHABLE) == 0
    assert h.value("voiceops_alerts_fired_total", alert=A.LIVEKIT_UNREACHABLE) == 1


@pytest.mark.faults
async def test_livekit_503_fault_fires_and_clears(livekit_server: Any, harness: Any) -> None:
    """A LiveKit answering 503 fires LiveKitUnreachable as a server error; clearing resolves."""
    h = await harness(monitor_config(livekit_server, agent_name="a", heartbeat=False), desired=0)
    livekit_server.faults.set(twirp_error=503)
    await wait_for_async(lambda: h.alert(A.LIVEKIT_UNREACHABLE), FIRE_WITHIN_S,
                         "LiveKitUnreachable")
    assert "answers with errors (HTTP 503" in h.alert(A.LIVEKIT_UNREACHABLE)["diagnosis"]
    livekit_server.faults.clear()
    await wait_for_async(lambda: not h.alert(A.LIVEKIT_UNREACHABLE), FIRE_WITHIN_S, "resolved")


async def test_credentials_refused(livekit_server: Any, harness: Any) -> None:
    """A wrong API secret fires LiveKitUnreachable saying the credentials were refused."""
    h = await harness(monitor_config(livekit_server, agent_name="a", heartbeat=False),
                      desired=0, secret="not-the-secret")
    await wait_for_async(lambda: h.alert(A.LIVEKIT_UNREACHABLE), FIRE_WITHIN_S,
                         "LiveKitUnreachable")
    fired = h.alert(A.LIVEKIT_UNREACHABLE)
    assert "refused our credentials" in fired["diagnosis"]
    assert "not-the-secret" not in fired["diagnosis"]
    assert fired["labels"] == {"reason": "credentials_refused"}


@pytest.mark.tools
@pytest.mark.process
async def test_alertmanager_receives_and_resolves(livekit_server: Any, harness: Any,
                                                  alertmanager: Any) -> None:
    """A real Alertmanager receives the alert (labels, annotations) and its endsAt on resolve."""
    am = alertmanager()
    cfg = monitor_config(livekit_server, agent_name="a", heartbeat=False,
                         alertmanager_url=am.url)
    h = await harness(cfg, desired=0, secret="not-the-secret")
    got = await wait_for_async(lambda: next((a for a in am.alerts()
                                         if a["labels"].get("alertname") == A.LIVEKIT_UNREACHABLE
                                         and a["status"]["state"] == "active"), None),
                               FIRE_WITHIN_S + 10, "the alert in Alertmanager", interval_s=0.3)
    assert got["labels"]["service"] == "voiceops" and got["labels"]["severity"] == "critical"
    assert "refused our credentials" in got["annotations"]["description"]
    h.monitor.resolve(A.LIVEKIT_UNREACHABLE)  # as if the credentials were fixed
    await wait_for_async(lambda: not any(a["labels"].get("alertname") == A.LIVEKIT_UNREACHABLE
                                     and a["status"]["state"] == "active" for a in am.alerts()),
                         10, "the alert resolved in Alertmanager", interval_s=0.3)
