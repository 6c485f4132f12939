"""Fixtures for the monitor tests: a running Monitor fed by a real event socket."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from monitor_helpers import FAST, Child, FakePool, event_socket, make_monitor

from voiceops import config, events
from voiceops.monitor.monitor import Monitor, MonitorOptions
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.prom_plugin import alertmanager, webhook_receiver  # noqa: F401


@dataclass
class Harness:
    monitor: Monitor
    pool: FakePool
    socket: EventRecorder
    children: list[Child]

    def value(self, name: str, **labels: str) -> float:
        got = self.monitor.metrics.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got

    def alert(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.monitor.alerts() if a["alert"] == name), None)


StartHarness = Callable[..., Any]


@pytest.fixture
async def harness(livekit_server: Any, tmp_path: Path) -> AsyncIterator[StartHarness]:
    """``await harness(cfg, desired=1)`` → a started Monitor; closed and checked at teardown."""
    made: list[Harness] = []

    async def start(cfg: config.Config, *, desired: int = 1, secret: str | None = None,
                    options: MonitorOptions = FAST) -> Harness:
        pool = FakePool(desired)
        box: list[Monitor] = []

        def on_event(event: events.Event) -> None:
            pool.on_event(event)
            box[0].on_event(event)

        mon = make_monitor(cfg, livekit_server.api_secret if secret is None else secret, pool,
                           options)
        box.append(mon)
        h = Harness(mon, pool, event_socket(on_event), [])
        made.append(h)
        await mon.start()
        return h

    yield start
    for h in made:
        await h.monitor.aclose()
        for child in h.children:
            await child.kill()
        h.socket.close()


@pytest.fixture
def no_leaked_children(livekit_server: Any) -> Iterator[None]:
    """After the test, no child of the test process is left (emulators: their fixture checks)."""
    yield

    def ours(p: psutil.Process) -> bool:
        try:
            emulator = "voiceops.emulator" in " ".join(p.cmdline())
            return not emulator and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    mine = psutil.Process(os.getpid()).children(recursive=False)
    left = [p for p in mine if ours(p)]
    left += [c for p in left for c in p.children(recursive=True)]
    assert not left, f"children left behind: {[(p.pid, p.name()) for p in left]}"
