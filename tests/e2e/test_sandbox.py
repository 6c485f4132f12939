"""`voiceops run --sandbox`: the whole product on the bundled emulator, scraped and alerting.

These run the supervisor with its own emulator child, so they need no LiveKit fixture; a real
Prometheus and Alertmanager (Debian packages) take the part they take in production.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, stack_config

from voiceops.testing.harness import free_port, wait_for
from voiceops.testing.tools import require_tool

pytestmark = [pytest.mark.process, pytest.mark.tools]


class Sandbox:
    """Stands in for the LiveKit fixture: where the supervisor's emulator will listen."""

    def __init__(self) -> None:
        port = free_port()
        self.url, self.http_url, self.api_key = (
            f"ws://127.0.0.1:{port}",
            f"http://127.0.0.1:{port}",
            "devkey",
        )

    def faults(self, body: dict[str, Any] | None) -> None:
        req = urllib.request.Request(
            self.http_url + "/emulator/faults",
            method="POST" if body else "DELETE",
            data=json.dumps(body).encode() if body else None,
        )
        with urllib.request.urlopen(req, timeout=10):
            pass


def start_sandbox(tmp: Path, **overrides: Any) -> tuple[Stack, Sandbox]:
    lk = Sandbox()
    sections = stack_config(tmp, lk, workers=1, heartbeat__interval_s=2, heartbeat__timeout_s=1.5,
                            monitor__job_request_deadline_s=2, **overrides)
    return Stack.start(tmp, sections, None, sandbox=True), lk


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceops", *args, "--config",
                           str(tmp / "voiceops.toml")], capture_output=True, text=True,
                          timeout=90, cwd=tmp, check=False)


def test_dispatch_command_prints_all_three_steps_and_prometheus_scrapes(
        tmp_path: Path, prometheus: Any) -> None:
    """`voiceops dispatch` shows dispatched, JobRequest, joined; Prometheus sees the histograms."""
    stack, _ = start_sandbox(tmp_path)
    try:
        prom = prometheus([stack.sections["metrics"]["listen"]])
        prom.wait_for_targets_up(timeout_s=60)
        for n in range(3):
            done = cli(tmp_path, "dispatch", f"sandbox-room-{n}")
            assert done.returncode == 0, done.stdout + done.stderr
            steps = [line.split()[0] for line in done.stdout.splitlines()[1:]]
            assert steps == ["dispatched", "JobRequest", "joined"], done.stdout
        p95 = (
            "histogram_quantile(0.95, sum by (le) (rate(voiceops_time_to_join_seconds_bucket[1m])))"
        )
        value = wait_for(lambda: prom.query_value(p95), 60, "a time-to-join p95 from Prometheus")
        assert 0 < value < 30
        success = ('sum(rate(voiceops_dispatch_requests_total{outcome=~"ok|reused"}[1m])) / '
                   'sum(rate(voiceops_dispatch_requests_total[1m]))')
        assert wait_for(lambda: prom.query_value(success), 60, "a success rate") == 1
        exposition = urllib.request.urlopen(
            "http://" + stack.sections["metrics"]["listen"] + "/metrics", timeout=10).read()
        lint = subprocess.run([require_tool("promtool"), "check", "metrics"], input=exposition,
                              capture_output=True, timeout=30, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        stack.close()


def test_swallowed_job_requests_alert_everywhere_and_resolve(
        tmp_path: Path, alertmanager: Any, webhook_receiver: Any) -> None:
    """The swallow fault: DispatchUnanswered and HeartbeatFailed in status, Alertmanager and a
    webhook, with a diagnosis; clearing the fault resolves both."""
    am = alertmanager()
    stack, lk = start_sandbox(tmp_path, alerts__webhooks=[webhook_receiver.url],
                              alerts__alertmanager_url=am.url)
    try:
        lk.faults({"swallow_job_requests": True})
        assert stack.dispatch("unanswered-room")[0] == 200
        unanswered = wait_for(lambda: stack.alert("DispatchUnanswered"), 2 + 10,
                              "DispatchUnanswered")
        assert "unanswered-room" in json.dumps(unanswered)
        failed = wait_for(lambda: stack.alert("HeartbeatFailed"), 2 * (2 + 2) + 10,
                          "HeartbeatFailed within two intervals")
        assert failed["diagnosis"]
        status = cli(tmp_path, "status")
        assert "HeartbeatFailed" in status.stdout, status.stdout
        am.wait_for_alert("HeartbeatFailed", timeout_s=30)
        webhook_receiver.wait_for(lambda d: (d.body or {}).get("alert") == "HeartbeatFailed",
                                  timeout_s=30)
        lk.faults(None)
        wait_for(lambda: stack.alert("HeartbeatFailed") is None, 2 * (2 + 2) + 10,
                 "HeartbeatFailed to resolve")
        wait_for(lambda: stack.alert("DispatchUnanswered") is None, 20,
                 "DispatchUnanswered to resolve")
    finally:
        stack.close()
