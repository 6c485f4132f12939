"""Words for operators: counts that read right in status lines and diagnoses."""

from __future__ import annotations


def plural(n: int, noun: str) -> str:
    """``1 room``, ``2 rooms``, ``0 rooms``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
