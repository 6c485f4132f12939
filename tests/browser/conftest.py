"""Browser fixtures: Debian's Chromium with a fake microphone, and the spoken question."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_support import QUESTION, speak

from voiceops.testing.chromium import Chromium, require_chromium


@pytest.fixture(scope="session")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The question the sandbox's Letta stand-in answers, as the fake microphone's input."""
    return speak(QUESTION, tmp_path_factory.mktemp("speech") / "question.wav")


@pytest.fixture
def browser(tmp_path: Path, question_wav: Path) -> Iterator[Callable[[], Chromium]]:
    """Start Chromium on demand; every one started is closed and checked for leftovers."""
    executable = require_chromium()
    started: list[Chromium] = []

    def start() -> Chromium:
        started.append(Chromium(executable, tmp_path / f"b{len(started)}",
                                fake_audio=question_wav))
        return started[-1]

    yield start
    for chromium in started:
        chromium.close()
        assert not chromium.alive(), "Chromium processes left behind"
