"""Where alert edges go: the log, the metrics, and webhooks (generic JSON and Alertmanager).

Webhooks never block the monitor: :meth:`WebhookSinks.on_change` only enqueues into a bounded
queue per target (the oldest payload is dropped when full), and one task per target delivers
with retries and exponential backoff. Alertmanager expects a firing alert to be re-sent
before its ``endsAt`` passes, so firing alerts are re-posted every ``am_resend_s`` with
``endsAt`` a few periods ahead; a resolve posts ``endsAt`` = now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from voiceops.metrics import Metrics
from voiceops.monitor.alerts import SEVERITY, SUMMARY, Alert, Change, Edge

alert_log = logging.getLogger("voiceops.alerts")
logger = logging.getLogger("voiceops.monitor.sinks")

EVENT_FIRED: Final = "alert_fired"
EVENT_RESOLVED: Final = "alert_resolved"
SERVICE: Final = "voiceops"


# Room names are callers' data: status, webhooks and Alertmanager carry them (the operator acts
# on them there), the log line does not. Every diagnosis names a room as "room '<name>'".
PERSONAL_LABELS: Final = frozenset({"room"})
REDACTED: Final = "<redacted>"
_ROOM_IN_TEXT: Final = re.compile(r"room '[^']*'")


def log_fields(change: Change) -> dict[str, Any]:
    labels = {k: REDACTED if k in PERSONAL_LABELS else v for k, v in change.labels.items()}
    diagnosis = _ROOM_IN_TEXT.sub(f"room {REDACTED}", change.diagnosis)
    return {"alert": change.alert, "severity": change.severity, "since": change.since,
            "diagnosis": diagnosis, "labels": labels}


def log_change(change: Change) -> None:
    """One structured line per edge: the event name, then the fields as JSON."""
    event = EVENT_FIRED if change.edge is Edge.FIRE else EVENT_RESOLVED
    fields = log_fields(change)
    level = logging.WARNING if change.edge is Edge.FIRE else logging.INFO
    alert_log.log(level, "%s %s", event, json.dumps(fields, sort_keys=True),
                  extra={"event": event, "fields": fields})


def metrics_change(metrics: Metrics, change: Change) -> None:
    firing = change.edge is Edge.FIRE
    metrics.alert_active.labels(change.alert).set(1 if firing else 0)
    if firing:
        metrics.alerts_fired.labels(change.alert).inc()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def generic_payload(change: Change, host: str) -> dict[str, Any]:
    return {"source": SERVICE, "host": host, "alert": change.alert,
            "status": "firing" if change.edge is Edge.FIRE else "resolved",
            "severity": change.severity, "summary": change.summary,
            "diagnosis": change.diagnosis, "labels": change.labels,
            "since": change.since, "at": change.at}


def alertmanager_alert(name: str, labels: dict[str, str], diagnosis: str, starts_at: float,
                       ends_at: float, host: str) -> dict[str, Any]:
    """One entry of Alertmanager's POST /api/v2/alerts body."""
    return {"labels": {**labels, "alertname": name, "severity": SEVERITY[name],
                       "service": SERVICE, "instance": host},
            "annotations": {"summary": SUMMARY[name], "description": diagnosis},
            "startsAt": _iso(starts_at), "endsAt": _iso(ends_at)}


def retry_delay_s(attempt: int, base_s: float, max_s: float) -> float:
    """Backoff before retry number ``attempt`` (0-based): base·2^attempt, capped."""
    return min(max_s, base_s * (2.0 ** min(attempt, 30)))


def redact(url: str) -> str:
    """A webhook URL without credentials or query (tokens often live there)."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname}{':' + str(p.port) if p.port else ''}{p.path}"


@dataclass(frozen=True)
class SinkOptions:
    queue_size: int = 256
    attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    timeout_s: float = 5.0
    am_resend_s: float = 60.0


class Target:
    """One webhook URL with its own bounded queue, delivered by :meth:`run`."""

    def __init__(self, url: str, opts: SinkOptions) -> None:
        self.url = url
        self.opts = opts
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=opts.queue_size)
        self.dropped = 0
        self.delivered = 0
        self.failed = 0

    def offer(self, payload: Any) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the oldest matters least: a newer edge supersedes it
            self.dropped += 1
        self.queue.put_nowait(payload)

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            payload = await self.queue.get()
            await self._deliver(session, payload)

    async def _deliver(self, session: aiohttp.ClientSession, payload: Any) -> None:
        for attempt in range(self.opts.attempts):
            try:
                timeout = aiohttp.ClientTimeout(total=self.opts.timeout_s)
                async with session.post(self.url, json=payload, timeout=timeout) as r:
                    if r.status < 300:
                        self.delivered += 1
                        return
                    error = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
            if attempt + 1 < self.opts.attempts:
                await asyncio.sleep(retry_delay_s(attempt, self.opts.backoff_base_s,
                                                  self.opts.backoff_max_s))
        self.failed += 1
        logger.warning("alert_webhook_failed url=%s attempts=%d error=%s", redact(self.url),
                       self.opts.attempts, error)


class WebhookSinks:
    """The configured webhooks; ``run`` owns the delivery tasks and the Alertmanager resend."""

    def __init__(self, webhooks: Sequence[str], alertmanager_url: str, *, host: str,
                 wall: Callable[[], float], firing: Callable[[], list[Alert]],
                 opts: SinkOptions | None = None) -> None:
        self.opts = opts or SinkOptions()
        self._host = host
        self._wall = wall
        self._firing = firing
        self.generic = [Target(u, self.opts) for u in webhooks]
        am = alertmanager_url.rstrip("/")
        self.alertmanager = Target(f"{am}/api/v2/alerts", self.opts) if am else None

    @property
    def targets(self) -> list[Target]:
        return [*self.generic, *([self.alertmanager] if self.alertmanager else [])]

    def on_change(self, change: Change) -> None:
        for target in self.generic:
            target.offer(generic_payload(change, self._host))
        if self.alertmanager is not None:
            now = self._wall()
            ends = now + 4 * self.opts.am_resend_s if change.edge is Edge.FIRE else now
            self.alertmanager.offer([alertmanager_alert(change.alert, change.labels,
                                                        change.diagnosis, change.since, ends,
                                                        self._host)])

    def resend_firing(self) -> None:
        """Re-post every firing alert to Alertmanager so it does not time them out."""
        alerts = self._firing()
        if self.alertmanager is None or not alerts:
            return
        ends = self._wall() + 4 * self.opts.am_resend_s
        self.alertmanager.offer([alertmanager_alert(a.name, a.labels, a.diagnosis, a.since,
                                                    ends, self._host) for a in alerts])

    async def run(self) -> None:
        if not self.targets:
            return
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tg:
            for target in self.targets:
                tg.create_task(target.run(session), name=f"webhook {redact(target.url)}")
            if self.alertmanager is not None:
                tg.create_task(self._resend_loop(), name="alertmanager resend")

    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(self.opts.am_resend_s)
            self.resend_firing()
