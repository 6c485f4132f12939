"""Webhook replay protection: LiveKit does nothing against replays, the receiver must.

Each LiveKit webhook event carries an ``id`` and a ``createdAt`` (unix seconds). An event is
refused when its id was already accepted, or when it is older (or further in the future)
than ``window_s``. Ids are remembered for the window only, and at most ``max_ids`` of them:
beyond that the oldest are forgotten first, which an attacker can only exploit by sending
that many signed events within the window, i.e. with our LiveKit secret.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

WINDOW_S: Final = 300.0  # LiveKit's webhook signature is valid for 5 minutes as well
MAX_IDS: Final = 100_000


class ReplayGuard:
    def __init__(self, *, window_s: float = WINDOW_S, max_ids: int = MAX_IDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._window_s = window_s
        self._max_ids = max_ids
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> accepted at (wall s)

    def __len__(self) -> int:
        return len(self._seen)

    def refusal(self, event_id: str, created_at: float) -> tuple[str, str] | None:
        """(code, message) saying why the event is refused, or None (its id is remembered)."""
        now = self._clock()
        self._forget(now)
        if not event_id:
            return "stale_webhook", "the webhook event has no id"
        if abs(now - created_at) > self._window_s:
            return "stale_webhook", (f"the webhook event was created {now - created_at:.0f} s "
                                     f"ago; only events within {self._window_s:.0f} s are taken")
        if event_id in self._seen:
            return "replayed_webhook", "the webhook event was already received (a replay)"
        self._seen[event_id] = now
        if len(self._seen) > self._max_ids:
            self._seen.popitem(last=False)
        return None

    def _forget(self, now: float) -> None:
        while self._seen:
            at = next(iter(self._seen.values()))
            if now - at <= self._window_s:
                return
            self._seen.popitem(last=False)
