"""Tells a worker's job processes that the worker drains, through a flag file.

livekit-agents gives a running job no word of its worker's drain: the worker just waits for
the job to end. An agent that is still waiting for its first caller would hold the drain
for its whole no-human timeout. The worker names a flag file in ``$VOICEOPS_DRAIN_FLAG``
before its job processes start (they inherit it) and creates the file when it drains; the
agent's stay-or-leave loop (:mod:`voiceops.agent.presence`) reads it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

DRAIN_FLAG_ENV: Final = "VOICEOPS_DRAIN_FLAG"


def flag_path(env: Mapping[str, str], pid: int) -> Path:
    """Beside the supervisor's event socket when there is one, else in the temp directory."""
    events = env.get("VOICEOPS_EVENTS", "")
    where = Path(events).parent if events else Path(tempfile.gettempdir())
    return where / f"voiceops-draining-{pid}"


def install(env: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    """Name this worker's flag in the environment its job processes will inherit."""
    path = flag_path(env, os.getpid())
    clear(path)  # left by a killed worker whose pid we reuse: we are not draining
    env[DRAIN_FLAG_ENV] = str(path)
    return path


def mark(path: Path) -> None:
    """The worker drains: raise the flag (best effort: a missing flag only costs time)."""
    with contextlib.suppress(OSError):
        path.touch()


def clear(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def worker_draining(env: Mapping[str, str] = os.environ) -> bool:
    """In a job process: has this job's worker begun to drain?"""
    path = env.get(DRAIN_FLAG_ENV, "")
    return bool(path) and os.path.exists(path)
