"""Fixtures for the supervisor's unit tests: a fake host, a fake clock, no real process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from unit_supervisor_helpers import CONFIG, MakeProc

from voiceops.config import Config
from voiceops.supervisor.process import ManagedProcess
from voiceops.supervisor.spec import Tuning, options_for, worker_spec
from voiceops.testing.fakehandle import FakeWorld


@pytest.fixture
async def world() -> AsyncIterator[FakeWorld]:
    w = FakeWorld()
    yield w
    await w.close()


@pytest.fixture
def make_proc(world: FakeWorld) -> MakeProc:
    def make(cfg: Config = CONFIG, index: int = 0, **runtime: Any) -> ManagedProcess:
        spec = worker_spec(cfg, index)
        return ManagedProcess(spec, options_for(cfg, "worker", Tuning()), world.runtime(**runtime))
    return make
