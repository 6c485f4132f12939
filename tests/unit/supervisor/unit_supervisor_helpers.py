"""Helpers for the supervisor's unit tests (a module of its own: ``conftest`` is ambiguous
when pytest is given several test directories)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from voiceops.config import Config, WorkersConfig
from voiceops.events import Ready
from voiceops.supervisor.process import ManagedProcess

# Short, round numbers so every deadline in a test is easy to read.
WORKERS = WorkersConfig(count=2, command=("fake-worker",), start_timeout_s=30.0,
                        drain_timeout_s=60.0, backoff_base_s=1.0, backoff_max_s=8.0,
                        stable_after_s=120.0, crashloop_failures=3, crashloop_window_s=100.0,
                        crashloop_cooldown_s=50.0, standby=0)
CONFIG = Config(workers=WORKERS)

MakeProc = Callable[..., ManagedProcess]


def config(**workers: Any) -> Config:
    """The test config with some ``[workers]`` keys changed."""
    return replace(CONFIG, workers=replace(WORKERS, **workers))


def ready(proc: ManagedProcess, *, standby: bool = False, worker_id: str = "AW_1") -> None:
    """The child reports ready (as its ``ready`` event would)."""
    pid = proc.child.pid if proc.child else 0
    proc.on_ready(Ready(process=proc.name, pid=pid, worker_id=worker_id, standby=standby))
