"""End-to-end fixtures: the real supervisor with real workers and the real proxy."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, stack_config

HERE = Path(__file__).resolve().parent
# These stacks have no Letta: the voice agent would end each job right after joining
# (no_letta_agent_id), while the dispatch-path tests need an agent that stays while a caller
# is there. The voice pipeline is tested with a Letta (test_voice_call, the sandbox tests).
PLACEHOLDER = {"workers__entrypoint": "voiceops.agent.basic:entrypoint"}


@pytest.fixture(scope="module")
def shared_stack(livekit_server_module: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Stack]:
    """One supervisor (2 workers + proxy) for the non-destructive tests of a module."""
    tmp = tmp_path_factory.mktemp("stack")
    stack = Stack.start(tmp, stack_config(tmp, livekit_server_module, workers=2, **PLACEHOLDER),
                        livekit_server_module)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack_factory(livekit_server: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh supervisor per test, for tests that kill or stop things."""
    started: list[Stack] = []

    def start(**overrides: Any) -> Stack:
        stack = Stack.start(
            tmp_path,
            stack_config(tmp_path, livekit_server, **{**PLACEHOLDER, **overrides}),
            livekit_server,
            env={"PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
        )
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.close()
