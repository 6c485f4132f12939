"""``python -m voiceops.worker`` refuses a bad configuration at start, before touching LiveKit."""

from __future__ import annotations

from typing import Any

import pytest

from voiceops.config import EX_CONFIG
from voiceops.events import Ready
from voiceops.testing.eventrec import EventRecorder

pytestmark = [pytest.mark.process]

# Checked before any connection: a LiveKit URL where nothing listens is fine.
NOWHERE = {"url": "ws://127.0.0.1:9", "api_key": "devkey"}


@pytest.mark.parametrize("entrypoint", ["voiceops.agent:no_such_function",
                                        "no_such_module_xyz:entrypoint", "no-colon"])
async def test_bad_entrypoint_exits_78_naming_the_key(spawn: Any, sink: EventRecorder,
                                                      entrypoint: str) -> None:
    """An unresolvable workers.entrypoint stops the worker at start: exit 78, key named."""
    worker = await spawn(**NOWHERE, api_secret="unused", entrypoint=entrypoint)
    code = await worker.wait_exit(30.0)
    assert code == EX_CONFIG
    assert "workers.entrypoint" in worker.log_tail()
    assert not sink.of_type(Ready)


async def test_missing_secret_exits_78_naming_the_key(spawn: Any, sink: EventRecorder) -> None:
    """Without a LiveKit API secret the worker exits 78 naming where the secret comes from."""
    worker = await spawn(**NOWHERE, api_secret="")
    assert await worker.wait_exit(30.0) == EX_CONFIG
    log = worker.log_tail()
    assert "livekit.api_secret_file" in log and "LIVEKIT_API_SECRET" in log
