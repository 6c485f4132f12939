"""promtool and amtool accept the shipped rules, configs and voiceops' metric exposition."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from deploy_helpers import DASHBOARDS, exposition_text, populated_metrics

from voiceops.testing.tools import require_tool

pytestmark = pytest.mark.tools

PROM_DIR = DASHBOARDS / "prometheus"


def run(tool: str, *args: str, cwd: Path = PROM_DIR, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool(tool), *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_check_rules() -> None:
    """promtool check rules accepts voiceops-rules.yml."""
    assert_ok(run("promtool", "check", "rules", "voiceops-rules.yml"))


def test_rule_unit_tests() -> None:
    """promtool test rules passes every alert and recording-rule expectation."""
    result = run("promtool", "test", "rules", "voiceops-rules.test.yml")
    assert_ok(result)
    assert "SUCCESS" in result.stdout


def test_check_example_config() -> None:
    """promtool check config accepts the example prometheus.yml and the rules it loads."""
    result = run("promtool", "check", "config", "prometheus.example.yml")
    assert_ok(result)
    assert "1 rule files found" in result.stdout


def test_exposition_is_lint_clean() -> None:
    """promtool check metrics finds nothing to complain about in voiceops' /metrics text."""
    result = run("promtool", "check", "metrics", stdin=exposition_text(populated_metrics()))
    assert_ok(result)
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_exposition_lint_catches_bad_names() -> None:
    """The lint check bites: a counter without _total and a millisecond unit are reported."""
    bad = "# HELP x_ms Latency.\n# TYPE x_ms counter\nx_ms 1\n"
    result = run("promtool", "check", "metrics", stdin=bad)
    assert result.returncode != 0 and "x_ms" in result.stdout + result.stderr


def test_alertmanager_example_config() -> None:
    """amtool check-config accepts the example Alertmanager config routing voiceops alerts."""
    assert_ok(run("amtool", "check-config", "alertmanager.example.yml",
                  cwd=DASHBOARDS / "alertmanager"))


@pytest.mark.parametrize(("alertname", "receiver"), [
    ("DispatchUnanswered", "voiceops-webhook"),
    ("LettaUnreachable", "voiceops-webhook"),
    ("VoiceopsHeartbeatStale", "voiceops-webhook"),
    ("DiskFull", "default"),
])
def test_alertmanager_routes_voiceops_alerts_to_the_webhook(alertname: str, receiver: str) -> None:
    """The example routes the app's and the rules' alerts to the webhook, and nothing else."""
    result = run("amtool", "config", "routes", "test", "--config.file=alertmanager.example.yml",
                 f"alertname={alertname}", cwd=DASHBOARDS / "alertmanager")
    assert_ok(result)
    assert result.stdout.split() == [receiver]
