"""Shared by the deploy tests: dashboard queries, PromQL metric names, our real exposition."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from voiceops.metrics import Metrics
from voiceops.testing.tools import REPO_ROOT

DASHBOARDS = REPO_ROOT / "dashboards"
DASHBOARD_PATH = DASHBOARDS / "voiceops.json"
RULES_PATH = DASHBOARDS / "prometheus" / "voiceops-rules.yml"
AGENT = "letta-voice-agent"

# Grafana's built-in interval variables, replaced by literals a real query could get.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m",
                    "__range_s": "300", "__interval_ms": "15000"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD_PATH.read_text()))


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return [PanelQuery(p["title"], t["refId"], t["expr"])
            for p in iter_panels(dashboard) if p.get("type") != "row"
            for t in p.get("targets", [])]


def variable_names(dashboard: dict[str, Any]) -> set[str]:
    return {v["name"] for v in dashboard.get("templating", {}).get("list", [])}


def used_variables(expr: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(expr)}


def substitute(expr: str) -> str:
    """The query Grafana would send with every user variable set to "All" (``.*``)."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_BUILTINS.get(name, ".*")
    return _VARIABLE.sub(replace, expr)


def selector_names(expr: str) -> set[str]:
    """Metric names of every vector selector in a PromQL expression (which must parse)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def label_values_metric(query: str) -> str | None:
    """The metric of a ``label_values(metric, label)`` variable query."""
    match = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)\s*", query)
    return match.group(1) if match else None


def load_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_PATH.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def populated_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """A Metrics instance with samples in every family, as after some real traffic."""
    m = Metrics(AGENT, registry if registry is not None else CollectorRegistry())
    for name in ("worker-0", "worker-1", "proxy"):
        m.add_process(name)
        m.set_process_state(name, "ready")
        m.process_up.labels(name).set(1)
        m.process_pss.labels(name).set(50e6)
    m.process_crashloop.labels("worker-1").set(1)
    m.pool_ready.set(2)
    m.pool_desired.set(2)
    m.alert_active.labels("HeartbeatFailed").set(1)
    add_traffic(m)
    return m


def add_traffic(m: Metrics) -> None:
    """One more round of traffic: every counter and histogram moves (so rate() is non-zero)."""
    m.dispatch_requests.labels(AGENT, "ok").inc(9)
    m.dispatch_requests.labels(AGENT, "livekit_error").inc(1)
    for value in (0.03, 0.2, 0.7):
        m.dispatch_latency.labels(AGENT).observe(value)
        m.dispatch_job_request.labels(AGENT).observe(value * 2)
        m.time_to_join.labels(AGENT).observe(value * 5)
        for hist in m.voice.values():
            hist.labels(AGENT).observe(value * 3)
    m.dispatch_unanswered.labels(AGENT, "heartbeat").inc()
    m.job_requests.labels(AGENT, "accepted").inc(3)
    m.jobs.labels(AGENT, "success").inc(2)
    m.jobs_active.labels(AGENT).set(1)
    m.heartbeat_probes.labels("ok").inc()
    m.heartbeat_last_success.set_to_current_time()
    m.alerts_fired.labels("HeartbeatFailed").inc()
    m.process_restarts.labels("worker-1", "crash").inc()
    for name in ("worker-0", "worker-1", "proxy"):
        m.process_cpu.labels(name).inc(0.5)
    m.drain_killed_jobs.inc()
    m.orphans_killed.inc()
    m.events_dropped.inc()


def exposition_text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def exposed_sample_names(metrics: Metrics) -> set[str]:
    """Sample names as Prometheus stores them: ``*_total``, ``*_bucket``, ``*_count``…"""
    return {sample.name for family in text_string_to_metric_families(exposition_text(metrics))
            for sample in family.samples}


def all_expressions() -> list[tuple[str, str]]:
    """(where, substituted PromQL) for every dashboard query and every rule."""
    dashboard = load_dashboard()
    exprs = [(f"panel {q.panel!r} {q.ref_id}", substitute(q.expr))
             for q in panel_queries(dashboard)]
    exprs += [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for r in load_rules()]
    return exprs


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)
