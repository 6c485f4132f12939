"""Worker events that arrive before their dispatch is known.

LiveKit sends the JobRequest to a worker while it is still answering the proxy's
CreateDispatch, so a worker's ``job_request`` can reach the supervisor before the proxy's
``dispatch_created``. Such events are held briefly and replayed once the dispatch appears;
events for dispatches that never appear (another host's proxy, a CLI) expire.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from voiceops.events import Event

HOLD_S = 30.0
MAX_HELD = 10_000


class EarlyEvents:
    def __init__(self, clock: Callable[[], float], *, hold_s: float = HOLD_S,
                 max_held: int = MAX_HELD) -> None:
        self._clock = clock
        self._hold_s = hold_s
        self._max_held = max_held
        self._held: OrderedDict[str, tuple[float, list[Event]]] = OrderedDict()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, dispatch_id: str, event: Event) -> None:
        now = self._clock()
        self._expire(now)
        entry = self._held.get(dispatch_id)
        if entry is None:
            self._held[dispatch_id] = (now, [event])
            if len(self._held) > self._max_held:
                self._held.popitem(last=False)
                self.expired += 1
        else:
            entry[1].append(event)

    def take(self, dispatch_id: str) -> list[Event]:
        """The held events of ``dispatch_id``, in arrival order (and forget them)."""
        entry = self._held.pop(dispatch_id, None)
        return [] if entry is None else entry[1]

    def _expire(self, now: float) -> None:
        while self._held:
            first = next(iter(self._held.values()))
            if now - first[0] < self._hold_s:
                return
            self._held.popitem(last=False)
            self.expired += 1
