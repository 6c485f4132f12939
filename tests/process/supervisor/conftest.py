"""Fixtures for real-process supervisor tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from voiceops.testing.harness import NotifyListener, Supervisor, free_port, write_config

StartSupervisor = Callable[..., Supervisor]


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def start_supervisor(tmp_path: Path, notify: NotifyListener) -> Iterator[StartSupervisor]:
    # Depends on ``notify`` so the fake NOTIFY_SOCKET outlives every supervisor.
    started: list[Supervisor] = []

    def start(workers: dict[str, Any], *, proxy: dict[str, Any] | None = None,
              env: dict[str, str] | None = None, stdout: Any = None) -> Supervisor:
        port = free_port()
        cfg = write_config(tmp_path / "voiceops.toml", workers=workers, proxy=proxy,
                           metrics_port=port)
        sup = Supervisor(tmp_path, cfg, port, env=env, stdout=stdout)
        started.append(sup)
        return sup

    yield start
    for sup in started:
        sup.close()
