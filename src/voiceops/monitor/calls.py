"""The jobs each worker holds right now, so a worker's death ends them at once, with a cause.

A job enters when its worker accepts the JobRequest (``joining``), becomes ``live`` when its
agent joins, and leaves with its ``job_ended``. When the worker exits, :meth:`CallBook.take`
hands over what it held: live calls were cut, joining dispatches will never be answered.
Memory is bounded: at most ``max_jobs`` (oldest dropped), and a joining job older than
``join_timeout_s`` is the correlator's to report, not a death's.
"""

from __future__ import annotations

import signal
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_JOBS: Final = 50_000


@dataclass
class Call:
    process: str
    job_id: str
    dispatch_id: str
    room: str
    since: float
    live: bool = False


@dataclass(frozen=True)
class Held:
    """What a process held when it exited."""

    live: tuple[Call, ...]
    joining: tuple[Call, ...]

    def __bool__(self) -> bool:
        return bool(self.live or self.joining)


class CallBook:
    def __init__(self, clock: Callable[[], float], *, join_timeout_s: float,
                 max_jobs: int = MAX_JOBS) -> None:
        self._clock = clock
        self._join_timeout_s = join_timeout_s
        self._max_jobs = max_jobs
        self._jobs: OrderedDict[str, Call] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def accepted(self, process: str, job_id: str, dispatch_id: str, room: str) -> None:
        if not job_id or not process or job_id in self._jobs:
            return
        self._jobs[job_id] = Call(process, job_id, dispatch_id, room, self._clock())
        while len(self._jobs) > self._max_jobs:
            self._jobs.popitem(last=False)

    def joined(self, job_id: str) -> None:
        call = self._jobs.get(job_id)
        if call is not None:
            call.live = True

    def ended(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def take(self, process: str) -> Held:
        """Forget and return every job ``process`` held."""
        mine = [c for c in self._jobs.values() if c.process == process]
        for call in mine:
            del self._jobs[call.job_id]
        now = self._clock()
        joining = tuple(c for c in mine if not c.live and now - c.since < self._join_timeout_s)
        return Held(live=tuple(c for c in mine if c.live), joining=joining)


def death_text(process: str, kind: str, returncode: int | None, held: Held) -> str:
    """``worker-1 died (SIGKILL) holding 3 calls and 2 joining``."""
    if returncode is not None and returncode < 0:
        try:
            how = signal.Signals(-returncode).name
        except ValueError:
            how = f"signal {-returncode}"
        how = f"out of memory, {how}" if kind == "oom" else how
        if kind in ("drain_timeout", "start_timeout", "rss"):
            how = f"{kind}, {how}"
        verb = "died"
    else:
        verb, how = "exited", f"code {returncode}"
    calls = f"{len(held.live)} call{'s' if len(held.live) != 1 else ''}"
    return f"{process} {verb} ({how}) holding {calls} and {len(held.joining)} joining"

