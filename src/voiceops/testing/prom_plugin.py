"""pytest fixtures for a real Prometheus and Alertmanager.

Register with ``pytest_plugins = ["voiceops.testing.prom_plugin"]``.

``prometheus(targets, ...)`` and ``alertmanager(webhook_url=...)`` are factories: each call
starts one server under the test's tmp dir and returns it ready; at teardown every server is
stopped and checked to be gone (no leaked child). A missing binary skips the test, or fails
it under ``CI=true`` (see :mod:`voiceops.testing.tools`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from voiceops.testing.procs import ServerProcess
from voiceops.testing.prom import Alertmanager, Prometheus, ScrapeTarget
from voiceops.testing.tools import require_tool
from voiceops.testing.webhook import WebhookReceiver

PrometheusFactory = Callable[..., Prometheus]
AlertmanagerFactory = Callable[..., Alertmanager]


class _Servers:
    """Servers started by one test, stopped in reverse order at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(self, server: ServerProcess) -> None:
        self.started.append(server)
        server.start()

    def stop_all(self) -> None:
        pids = [s.pid for s in self.started if s.pid is not None]
        for server in reversed(self.started):
            server.stop()
        leaked = [pid for pid in pids if _alive(pid)]
        assert not leaked, f"test servers still running after stop: {leaked}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A started :class:`WebhookReceiver` on a free loopback port."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Factory: ``prometheus(targets, rule_files=(), alertmanager=None, scrape_interval_s=1.0)``."""
    servers = _Servers(tmp_path)

    def start(targets: Sequence[str | ScrapeTarget], *, rule_files: Sequence[Path] = (),
              alertmanager: Alertmanager | None = None, scrape_interval_s: float = 1.0,
              **kwargs: Any) -> Prometheus:
        binary = require_tool("prometheus")
        workdir = tmp_path / f"prometheus-{len(servers.started)}"
        am = [alertmanager.address] if alertmanager is not None else []
        server = Prometheus(binary, workdir, targets, scrape_interval_s=scrape_interval_s,
                            rule_files=rule_files, alertmanager_addresses=am, **kwargs)
        servers.start(server)
        return server

    yield start
    servers.stop_all()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerFactory]:
    """Factory: ``alertmanager(webhook_url=None)`` → a ready Alertmanager (group_wait 1s)."""
    servers = _Servers(tmp_path)

    def start(*, webhook_url: str | None = None, **kwargs: Any) -> Alertmanager:
        binary = require_tool("alertmanager")
        workdir = tmp_path / f"alertmanager-{len(servers.started)}"
        server = Alertmanager(binary, workdir, webhook_url=webhook_url, **kwargs)
        servers.start(server)
        return server

    yield start
    servers.stop_all()
