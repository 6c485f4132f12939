"""Fixtures for the worker tests: the event sink and real worker processes."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import WorkerProcess, event_sink, spawn_worker, worker_config

from voiceops.testing.eventrec import EventRecorder

StartWorker = Callable[..., Awaitable[WorkerProcess]]
# The placeholder agent (joins, stays while attended, no media): the worker's mechanics are
# the subject here; the voice pipeline has its own tests (tests/integration/voice).
BASIC_AGENT = "voiceops.agent.basic:entrypoint"


@pytest.fixture
def sink() -> Iterator[EventRecorder]:
    s = event_sink()
    yield s
    s.close()


@pytest.fixture
def agent_name() -> str:
    return f"wk-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def spawn(sink: EventRecorder, agent_name: str,
                tmp_path: Path) -> AsyncIterator[StartWorker]:
    """Start ``python -m voiceops.worker`` with a generated config; killed, checked at teardown."""
    started: list[WorkerProcess] = []

    async def start(*, url: str, api_key: str, api_secret: str,
                    entrypoint: str = BASIC_AGENT, drain_timeout_s: float = 60.0,
                    no_human_timeout_s: float = 60.0, stt: str = "pocketsphinx",
                    tts: str = "piper", extra_env: dict[str, str] | None = None,
                    num_idle_processes: int = 0) -> WorkerProcess:
        cfg = worker_config(tmp_path / f"worker-{len(started)}.toml", url=url, api_key=api_key,
                            agent_name=agent_name, entrypoint=entrypoint,
                            drain_timeout_s=drain_timeout_s, stt=stt, tts=tts,
                            num_idle_processes=num_idle_processes)
        worker = await spawn_worker(
            cfg, sink, api_secret=api_secret,
            extra_env={"VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": str(no_human_timeout_s),
                       **(extra_env or {})})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.kill()
        shutil.rmtree(worker.out_dir, ignore_errors=True)


@pytest.fixture
def start_worker(livekit_server: Any, spawn: StartWorker) -> StartWorker:
    """``spawn`` pointed at the test's LiveKit server."""

    async def start(**kwargs: Any) -> WorkerProcess:
        return await spawn(url=livekit_server.url, api_key=livekit_server.api_key,
                           api_secret=livekit_server.api_secret, **kwargs)

    return start


@pytest.fixture
async def lkapi(livekit_server: Any) -> AsyncIterator[Any]:
    from livekit import api

    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                              livekit_server.api_secret) as client:
        yield client
