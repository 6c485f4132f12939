"""A real Prometheus and a real Alertmanager for tests: loopback, free ports, temporary storage.

Facts this relies on (notes/observability.md §1): both default to 0.0.0.0, so the listen
address is always given; the first scrape comes ~5–6 s after start (service discovery is
throttled), so tests poll the targets or the query instead of sleeping; an empty
``--cluster.listen-address`` turns off Alertmanager's gossip port. Config files are written
as JSON, which is YAML.

The waits block the calling thread. From an async test whose scraped server runs on the same
event loop, use the ``a``-prefixed variants, which poll in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceops.testing.procs import ServerError, ServerProcess, free_port, http_json, poll_until

__all__ = ["Alertmanager", "PromQueryError", "Prometheus", "ScrapeTarget", "ServerError"]

Sample = dict[str, Any]


class PromQueryError(ServerError):
    """Prometheus rejected a query (bad PromQL, unknown function, ...)."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape target: ``address`` is ``host:port``."""

    address: str
    job: str = "voiceops"
    metrics_path: str = "/metrics"


def _as_target(target: str | ScrapeTarget) -> ScrapeTarget:
    return target if isinstance(target, ScrapeTarget) else ScrapeTarget(address=target)


def prometheus_config(targets: Sequence[ScrapeTarget], *, interval_s: float,
                      rule_files: Sequence[Path] = (),
                      alertmanager_addresses: Sequence[str] = ()) -> dict[str, Any]:
    """The prometheus.yml for a test: one scrape job per (job, metrics_path)."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for target in targets:
        jobs.setdefault((target.job, target.metrics_path), []).append(target.address)
    interval = f"{int(interval_s * 1000)}ms"
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "scrape_configs": [
            {"job_name": job, "metrics_path": path, "static_configs": [{"targets": addresses}]}
            for (job, path), addresses in jobs.items()
        ],
        "rule_files": [str(p) for p in rule_files],
    }
    if alertmanager_addresses:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": list(alertmanager_addresses)}]}]}
    return config


class Prometheus(ServerProcess):
    """A Prometheus server scraping ``targets`` every ``scrape_interval_s``."""

    def __init__(self, binary: str, workdir: Path, targets: Sequence[str | ScrapeTarget], *,
                 scrape_interval_s: float = 1.0, rule_files: Sequence[Path] = (),
                 alertmanager_addresses: Sequence[str] = (), port: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        self.targets = [_as_target(t) for t in targets]
        config = prometheus_config(self.targets, interval_s=scrape_interval_s,
                                   rule_files=rule_files,
                                   alertmanager_addresses=alertmanager_addresses)
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2))
        argv = [binary, f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        super().__init__("prometheus", argv, workdir, port)

    # -- HTTP API ---------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` field, or PromQueryError with Prometheus' reason."""
        query = urllib.parse.urlencode(params)
        answer = http_json(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""))
        if not isinstance(answer, dict) or answer.get("status") != "success":
            reason = answer.get("error") if isinstance(answer, dict) else answer
            raise PromQueryError(f"{path} {params}: {reason}")
        return answer["data"]

    def query_data(self, expr: str) -> dict[str, Any]:
        """The instant query's ``data``: ``{"resultType": ..., "result": ...}``."""
        return dict(self.api("query", query=expr))

    def query(self, expr: str) -> list[Sample]:
        """The instant vector (or scalar as a one-element list) for ``expr``."""
        data = self.query_data(expr)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def query_value(self, expr: str) -> float | None:
        """The value of a single-sample result; None when the result is empty."""
        result = self.query(expr)
        if len(result) > 1:
            raise PromQueryError(f"{expr!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1]) if result else None

    def active_targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", state="active")["activeTargets"])

    def firing_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a.get("state") == "firing"]

    # -- deadline polls ----------------------------------------------------------------------
    def wait_for_targets_up(self, *, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait until every configured target has been scraped successfully."""
        def probe() -> list[dict[str, Any]] | None:
            targets = self.active_targets()
            up = [t for t in targets if t.get("health") == "up"]
            return targets if targets and len(up) == len(self.targets) else None
        return poll_until(probe, timeout_s=timeout_s, what="all scrape targets up")

    def wait_for_query(self, expr: str, *, timeout_s: float = 30.0,
                       predicate: Callable[[list[Sample]], bool] = bool) -> list[Sample]:
        """Poll ``expr`` until ``predicate(result)`` holds (default: a non-empty result)."""
        def probe() -> list[Sample] | None:
            result = self.query(expr)
            return result if predicate(result) else None
        return poll_until(probe, timeout_s=timeout_s, what=f"query {expr!r}")

    def wait_for_alert(self, alertname: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until Prometheus reports ``alertname`` as firing."""
        def probe() -> dict[str, Any] | None:
            return next((a for a in self.firing_alerts()
                         if a["labels"].get("alertname") == alertname), None)
        return poll_until(probe, timeout_s=timeout_s, what=f"alert {alertname} firing")

    async def aquery(self, expr: str) -> list[Sample]:
        return await asyncio.to_thread(self.query, expr)

    async def await_targets_up(self, *, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.wait_for_targets_up, timeout_s=timeout_s)

    async def await_query(self, expr: str, *, timeout_s: float = 30.0,
                          predicate: Callable[[list[Sample]], bool] = bool) -> list[Sample]:
        return await asyncio.to_thread(self.wait_for_query, expr, timeout_s=timeout_s,
                                       predicate=predicate)


def alertmanager_config(webhook_url: str | None) -> dict[str, Any]:
    """An alertmanager.yml that sends every alert group to ``webhook_url`` within about 1 s."""
    receiver: dict[str, Any] = {"name": "test"}
    if webhook_url:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    return {
        "route": {"receiver": "test", "group_by": ["alertname"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [receiver],
    }


class Alertmanager(ServerProcess):
    """An Alertmanager without clustering, forwarding to ``webhook_url`` (if given)."""

    def __init__(self, binary: str, workdir: Path, *, webhook_url: str | None = None,
                 port: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        self.webhook_url = webhook_url
        config_path = workdir / "alertmanager.yml"
        config_path.write_text(json.dumps(alertmanager_config(webhook_url), indent=2))
        argv = [binary, f"--config.file={config_path}", f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                "--log.level=warn"]
        super().__init__("alertmanager", argv, workdir, port)

    @property
    def address(self) -> str:
        """``host:port``, the form Prometheus' ``alerting`` config wants."""
        return f"127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds now (``GET /api/v2/alerts``)."""
        return list(http_json(f"{self.url}/api/v2/alerts") or [])

    def post_alerts(self, alerts: Sequence[dict[str, Any]]) -> None:
        """Push alerts the way voiceops' Alertmanager sink does (``POST /api/v2/alerts``)."""
        answer = http_json(f"{self.url}/api/v2/alerts", body=list(alerts))
        if answer not in (None, "", {}):
            raise ServerError(f"alertmanager refused alerts: {answer}")

    def wait_for_alert(self, alertname: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((a for a in self.alerts()
                         if a["labels"].get("alertname") == alertname), None)
        return poll_until(probe, timeout_s=timeout_s, what=f"alertmanager alert {alertname}")
