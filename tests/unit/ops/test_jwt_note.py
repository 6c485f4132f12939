"""The LiveKit secret's length is judged once, by the supervisor, at start."""

from __future__ import annotations

import logging

from voiceops.jwtkeys import secret_note


def test_sandbox_dev_secret_is_a_note_not_a_warning() -> None:
    """The sandbox's public dev secret gets one INFO line saying what it is."""
    level, text = secret_note("secret", sandbox=True) or (0, "")
    assert level == logging.INFO and "signed_with=livekit-server-dev-public-secret" in text


def test_short_production_secret_is_one_warning_without_the_secret() -> None:
    """A short secret outside the sandbox is a warning naming its length, never its value."""
    level, text = secret_note("hunter2-hunter2", sandbox=False) or (0, "")
    assert level == logging.WARNING and "bytes=15" in text and "hunter2" not in text


def test_long_secret_says_nothing() -> None:
    """A 32-byte secret needs no word at all."""
    assert secret_note("x" * 32, sandbox=False) is None
