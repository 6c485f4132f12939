"""A real Prometheus scrapes our metrics and answers every panel query; alerts reach a webhook."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest
from deploy_helpers import (
    RULES_PATH,
    add_traffic,
    load_dashboard,
    panel_queries,
    populated_metrics,
    substitute,
)
from prometheus_client import CollectorRegistry, start_http_server

from voiceops.metrics import Metrics
from voiceops.testing.prom import Alertmanager, Prometheus
from voiceops.testing.prom_plugin import AlertmanagerFactory, PrometheusFactory
from voiceops.testing.tools import require_tool
from voiceops.testing.webhook import Delivery, WebhookReceiver

pytestmark = [pytest.mark.tools, pytest.mark.process]

MOVED = 'sum(rate(voiceops_dispatch_requests_total{outcome="ok"}[1m])) > 0'


@contextmanager
def serve(metrics: Metrics) -> Iterator[str]:
    """Serve the registry on a free loopback port; yields "host:port"."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def served_metrics() -> Iterator[tuple[Metrics, str]]:
    """A populated voiceops registry served on a free loopback port: (metrics, "host:port")."""
    metrics = populated_metrics(CollectorRegistry())
    with serve(metrics) as address:
        yield metrics, address


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """One Prometheus that has scraped two rounds of traffic, shared by the query tests."""
    metrics = populated_metrics(CollectorRegistry())
    with serve(metrics) as address:
        prom = Prometheus(require_tool("prometheus"), tmp_path_factory.mktemp("prom"), [address])
        prom.start()
        try:
            scraped_with_traffic(prom, metrics)
            yield prom
        finally:
            assert_stopped(prom)


def scraped_with_traffic(prom: Prometheus, metrics: Metrics) -> None:
    """Wait for a first scrape, add traffic, wait until rate() sees it (two differing samples)."""
    prom.wait_for_targets_up(timeout_s=60)
    add_traffic(metrics)
    prom.wait_for_query(MOVED, timeout_s=60)


def assert_stopped(*servers: Prometheus | Alertmanager) -> None:
    pids = [s.pid for s in servers if s.pid is not None]
    for server in servers:
        server.stop()
    children = {c.pid for c in psutil.Process().children(recursive=True)}
    assert not children & set(pids), "a test server outlived its stop()"


def test_every_dashboard_query_answers(scraped: Prometheus) -> None:
    """Every panel query runs against the scraped data with status success and some data."""
    prom = scraped
    empty = []
    for query in panel_queries(load_dashboard()):
        result = prom.query(substitute(query.expr))  # PromQueryError unless status == success
        if not result:
            empty.append(f"{query.panel} {query.ref_id}")
    assert not empty, f"queries with no data: {empty}"


def test_key_queries_return_numbers(scraped: Prometheus) -> None:
    """Success rate is 0.9 for 9 ok + 1 LiveKit error; the time-to-join p95 is a finite number."""
    prom = scraped
    success = prom.query_value(
        'sum(rate(voiceops_dispatch_requests_total{outcome=~"ok|reused"}[1m]))'
        ' / sum(rate(voiceops_dispatch_requests_total'
        '{outcome=~"ok|reused|livekit_error|timeout"}[1m]))')
    assert success == pytest.approx(0.9)
    p95 = prom.query_value(
        "histogram_quantile(0.95, sum by (le) (rate(voiceops_time_to_join_seconds_bucket[1m])))")
    assert p95 is not None and math.isfinite(p95) and 0 < p95 <= 30


def test_alertmanager_forwards_posted_alerts(alertmanager: AlertmanagerFactory,
                                             webhook_receiver: WebhookReceiver) -> None:
    """An alert posted to /api/v2/alerts (as voiceops' sink does) reaches the webhook receiver."""
    am = alertmanager(webhook_url=webhook_receiver.url)
    am.post_alerts([{"labels": {"alertname": "DispatchUnanswered", "agent_name": "a"},
                     "annotations": {"summary": "no JobRequest for dispatch d1"}}])
    delivery = webhook_receiver.wait_for(lambda d: _names(d) == ["DispatchUnanswered"],
                                         timeout_s=30)
    assert delivery.body["status"] == "firing"
    assert_stopped(am)


def test_rule_alert_reaches_webhook(prometheus: PrometheusFactory,
                                    alertmanager: AlertmanagerFactory,
                                    webhook_receiver: WebhookReceiver,
                                    served_metrics: tuple[Metrics, str]) -> None:
    """voiceops_alert_active=1 → shipped rule VoiceopsAlertActive fires → Alertmanager → webhook."""
    _metrics, address = served_metrics
    am = alertmanager(webhook_url=webhook_receiver.url)
    prom = prometheus([address], rule_files=[RULES_PATH], alertmanager=am)
    alert = prom.wait_for_alert("VoiceopsAlertActive", timeout_s=60)
    assert alert["labels"]["alert"] == "HeartbeatFailed"
    delivery = webhook_receiver.wait_for(lambda d: "VoiceopsAlertActive" in _names(d),
                                         timeout_s=60)
    assert delivery.body["alerts"][0]["labels"]["job"] == "voiceops"
    assert_stopped(prom, am)


def _names(delivery: Delivery) -> list[str]:
    body = delivery.body if isinstance(delivery.body, dict) else {}
    return [a["labels"].get("alertname", "") for a in body.get("alerts", [])]
