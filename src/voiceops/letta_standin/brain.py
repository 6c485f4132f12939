"""The deterministic brain shared by the Letta stand-in and the stub LLM behind a real Letta.

Both answer the same words to the same history, so a test that passes against the stand-in
checks the same reply against a real Letta 0.16.8 (whose LLM is the stub). The phrases are
ones pocketsphinx transcribes reliably: the call test hears the answer through piper.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

CAPITAL_ANSWER: Final = "The capital of France is Paris."
STORY_ANSWER: Final = ("Once upon a time there was a small robot. It liked to talk to people. "
                       "Every night it told them a story. The end.")
NOTHING_BEFORE: Final = "You have not said anything before."


def normalize(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: how a transcript reads."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def reply(user_turns: Sequence[str]) -> str:
    """The answer to the last user turn, given every user turn of this thread so far."""
    if not user_turns:
        return NOTHING_BEFORE
    said = normalize(user_turns[-1])
    # "capital of" alone: callers reach the sandbox through offline speech recognition, which
    # now and then hears "France" as "friends" or "brand" after Opus and the emulator.
    if "capital of" in said:
        return CAPITAL_ANSWER
    if "tell me a story" in said:
        return STORY_ANSWER
    if "what did i say before" in said:
        earlier = [normalize(t) for t in user_turns[:-1]]
        return f"Before that you said: {earlier[-1]}." if earlier else NOTHING_BEFORE
    return f"You said: {said}." if said else "I did not hear anything."


def tokens(text: str) -> list[str]:
    """Split a reply into LLM-like token chunks (a word and its leading space each)."""
    return re.findall(r"\s*\S+", text)
