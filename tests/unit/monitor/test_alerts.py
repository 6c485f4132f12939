"""Alert state edges and their sinks (log line, metrics, status shape)."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import CollectorRegistry

from voiceops.metrics import ALERTS, Metrics
from voiceops.monitor import alerts as A
from voiceops.monitor.alerts import AlertBook, Edge
from voiceops.monitor.sinks import (
    EVENT_FIRED,
    EVENT_RESOLVED,
    alertmanager_alert,
    generic_payload,
    log_change,
    metrics_change,
    redact,
    retry_delay_s,
)


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_every_alert_fires_and_resolves_once() -> None:
    """Each alert gives one FIRE edge, no edge on refire, one RESOLVE edge, none on re-resolve."""
    wall = Wall()
    book = AlertBook(wall)
    for name in ALERTS:
        fired = book.fire(name, "why", {"k": "v"})
        assert fired is not None and fired.edge is Edge.FIRE and fired.since == wall.now
        wall.now += 5
        assert book.fire(name, "why, updated") is None
        assert book.is_firing(name)
        resolved = book.resolve(name)
        assert resolved is not None and resolved.edge is Edge.RESOLVE
        assert resolved.since == wall.now - 5 and resolved.diagnosis == "why, updated"
        assert book.resolve(name) is None
        assert not book.is_firing(name)


def test_status_shape_lists_firing_alerts() -> None:
    """alerts() lists firing alerts as {alert, since, diagnosis, labels}."""
    wall = Wall()
    book = AlertBook(wall)
    book.fire(A.HEARTBEAT_FAILED, "diag", {"result": "no_job_request"})
    book.fire(A.NO_READY_WORKERS, "none")
    book.resolve(A.NO_READY_WORKERS)
    assert book.alerts() == [{"alert": "HeartbeatFailed", "since": wall.now, "diagnosis": "diag",
                              "labels": {"result": "no_job_request"}}]


def test_unknown_alert_name_is_an_error() -> None:
    """Only DESIGN's alert names exist."""
    with pytest.raises(KeyError):
        AlertBook(Wall()).fire("Bogus", "x")


def test_log_and_metric_sinks(caplog: pytest.LogCaptureFixture) -> None:
    """A fire logs one JSON-friendly line and sets alert_active; a resolve clears it."""
    m = Metrics("agent", CollectorRegistry())
    book = AlertBook(Wall())
    caplog.set_level(logging.INFO, logger="voiceops.alerts")
    change = book.fire(A.LIVEKIT_UNREACHABLE, "LiveKit down", {"reason": "unreachable"})
    assert change is not None
    log_change(change)
    metrics_change(m, change)
    get = m.registry.get_sample_value
    assert get("voiceops_alert_active", {"alert": "LiveKitUnreachable"}) == 1
    assert get("voiceops_alerts_fired_total", {"alert": "LiveKitUnreachable"}) == 1
    resolved = book.resolve(A.LIVEKIT_UNREACHABLE)
    assert resolved is not None
    log_change(resolved)
    metrics_change(m, resolved)
    assert get("voiceops_alert_active", {"alert": "LiveKitUnreachable"}) == 0
    assert get("voiceops_alerts_fired_total", {"alert": "LiveKitUnreachable"}) == 1
    records = [r for r in caplog.records if r.name == "voiceops.alerts"]
    assert [r.event for r in records] == [EVENT_FIRED, EVENT_RESOLVED]  # type: ignore[attr-defined]
    line = records[0].getMessage()
    assert line.startswith("alert_fired ")
    assert json.loads(line.split(" ", 1)[1])["diagnosis"] == "LiveKit down"


def test_the_alert_log_line_names_no_room(caplog: pytest.LogCaptureFixture) -> None:
    """Room names are callers' data: the log line redacts them, in labels and in the
    diagnosis; the webhook payload (the operator's) keeps them."""
    book = AlertBook(Wall())
    caplog.set_level(logging.INFO, logger="voiceops.alerts")
    change = book.fire(A.DISPATCH_UNANSWERED,
                       "dispatch AD_1 to room 'alice-kitchen': no JobRequest within 10 s",
                       {"room": "alice-kitchen", "agent_name": "a"})
    assert change is not None
    log_change(change)
    line = next(r for r in caplog.records if r.name == "voiceops.alerts").getMessage()
    assert "alice" not in line
    fields = json.loads(line.split(" ", 1)[1])
    assert fields["labels"] == {"room": "<redacted>", "agent_name": "a"}
    assert fields["diagnosis"] == "dispatch AD_1 to room <redacted>: no JobRequest within 10 s"
    assert generic_payload(change, "h")["labels"]["room"] == "alice-kitchen"


def test_webhook_payload_shapes() -> None:
    """Generic JSON carries status and diagnosis; Alertmanager gets labels/annotations/times."""
    wall = Wall()
    book = AlertBook(wall)
    change = book.fire(A.DISPATCH_UNANSWERED, "no JobRequest", {"room": "r1"})
    assert change is not None
    generic = generic_payload(change, "host1")
    assert generic["status"] == "firing" and generic["alert"] == "DispatchUnanswered"
    assert generic["diagnosis"] == "no JobRequest" and generic["labels"] == {"room": "r1"}
    am = alertmanager_alert("DispatchUnanswered", {"room": "r1"}, "no JobRequest", wall.now,
                            wall.now + 240, "host1")
    assert am["labels"] == {"alertname": "DispatchUnanswered", "severity": "critical",
                            "service": "voiceops", "instance": "host1", "room": "r1"}
    assert am["annotations"]["description"] == "no JobRequest"
    assert am["startsAt"] == "2023-11-14T22:13:20Z" and am["endsAt"] == "2023-11-14T22:17:20Z"


def test_retry_backoff_and_redaction() -> None:
    """Backoff doubles and is capped; a webhook URL is logged without credentials or query."""
    assert [retry_delay_s(i, 0.5, 3.0) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay_s(10_000, 0.5, 3.0) == 3.0
    url = "https://user:pw@hooks.example:8443/x?token=abc"
    assert redact(url) == "https://hooks.example:8443/x"


def test_alertmanager_resend_while_firing_and_ends_on_resolve() -> None:
    """Firing alerts are re-queued for Alertmanager with endsAt ahead; a resolve ends now."""
    from voiceops.monitor.sinks import SinkOptions, WebhookSinks

    wall = Wall()
    book = AlertBook(wall)
    sinks = WebhookSinks([], "http://127.0.0.1:9093/", host="h", wall=wall, firing=book.firing,
                         opts=SinkOptions(am_resend_s=60.0))
    assert sinks.alertmanager is not None
    assert sinks.alertmanager.url == "http://127.0.0.1:9093/api/v2/alerts"
    sinks.resend_firing()
    assert sinks.alertmanager.queue.qsize() == 0  # nothing firing, nothing sent
    fired = book.fire(A.WORKER_CRASH_LOOP, "parked", {"process": "worker-1"})
    assert fired is not None
    sinks.on_change(fired)
    wall.now += 60
    sinks.resend_firing()
    resolved = book.resolve(A.WORKER_CRASH_LOOP)
    assert resolved is not None
    sinks.on_change(resolved)
    q = sinks.alertmanager.queue
    first, resent, ended = q.get_nowait()[0], q.get_nowait()[0], q.get_nowait()[0]
    assert first["startsAt"] == resent["startsAt"] == ended["startsAt"]
    assert resent["endsAt"] == "2023-11-14T22:18:20Z"  # now + 4 resend periods
    assert ended["endsAt"] == "2023-11-14T22:14:20Z"  # the resolve time
    assert resent["labels"]["process"] == "worker-1"
