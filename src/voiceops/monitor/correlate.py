"""Dispatch ↔ JobRequest ↔ join correlation: a pure state machine on an injected clock.

Every proxy dispatch is tracked by its dispatch id with a deadline. The caller (the monitor)
feeds events in and acts on what comes back:

* :meth:`Correlator.job_request` / :meth:`Correlator.agent_joined` return the seconds to
  observe (dispatch created → JobRequest / → agent in the room), or None when there is
  nothing to observe (unknown dispatch, or a join already counted: the worker event and the
  webhook both report a join, whichever comes first counts). A join counts only for the
  dispatch its job belongs to (known from a JobRequest or from ListDispatch).
* :meth:`Correlator.take_due` hands over dispatches whose deadline passed with no JobRequest;
  the caller confirms with ListDispatch and reports back through :meth:`Correlator.confirmed`,
  which decides ANSWERED, UNANSWERED or REDISPATCH.

Memory stays bounded: entries leave when their agent joined (after a short linger, so a
duplicate join is recognised), when an unanswered dispatch is handled, after ``max_age_s``,
or, above ``max_entries``, oldest first (counted in ``evicted``).
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

AGENT_IDENTITY_PREFIX: Final = "agent-"  # LiveKit names agent participants agent-<job id>


class Phase(enum.StrEnum):
    WAITING = "waiting"  # dispatched, no JobRequest yet
    CONFIRMING = "confirming"  # deadline passed; ListDispatch in flight
    REQUESTED = "requested"  # JobRequest seen (or confirmed elsewhere); waiting for the join
    JOINED = "joined"  # the agent is in the room; lingers to absorb a duplicate join
    UNANSWERED = "unanswered"  # counted and alerted; lingers so a late JobRequest is recognised


class Input(enum.StrEnum):
    JOB_REQUEST = "job_request"
    JOINED = "joined"
    DEADLINE = "deadline"
    CONFIRMED_ANSWERED = "confirmed_answered"
    CONFIRMED_MISSING = "confirmed_missing"
    JOIN_FAILED = "join_failed"  # the job ended before its agent joined


_TRANSITIONS: Final[dict[tuple[Phase, Input], Phase]] = {
    (Phase.WAITING, Input.JOB_REQUEST): Phase.REQUESTED,
    (Phase.WAITING, Input.JOINED): Phase.JOINED,
    (Phase.WAITING, Input.DEADLINE): Phase.CONFIRMING,
    (Phase.CONFIRMING, Input.JOB_REQUEST): Phase.REQUESTED,
    (Phase.CONFIRMING, Input.JOINED): Phase.JOINED,
    (Phase.CONFIRMING, Input.CONFIRMED_ANSWERED): Phase.REQUESTED,
    (Phase.CONFIRMING, Input.CONFIRMED_MISSING): Phase.UNANSWERED,
    (Phase.REQUESTED, Input.JOINED): Phase.JOINED,
    (Phase.REQUESTED, Input.JOIN_FAILED): Phase.UNANSWERED,
    (Phase.UNANSWERED, Input.JOB_REQUEST): Phase.REQUESTED,
    (Phase.UNANSWERED, Input.JOINED): Phase.JOINED,
}


class Verdict(enum.StrEnum):
    ANSWERED = "answered"  # a job exists (another host's worker took it): no alert
    UNANSWERED = "unanswered"  # count and alert
    REDISPATCH = "redispatch"  # count, alert, and delete + re-create the dispatch once
    IGNORED = "ignored"  # the entry moved on meanwhile (a JobRequest arrived, or it expired)


@dataclass(frozen=True)
class CorrelateOptions:
    deadline_s: float = 10.0  # monitor.job_request_deadline_s
    redispatch: bool = False  # monitor.redispatch_unanswered
    join_timeout_s: float = 120.0  # JobRequest → join; longer means the media path failed
    linger_s: float = 30.0  # how long joined/unanswered entries stay to absorb late events
    max_age_s: float = 600.0  # no entry outlives this
    max_entries: int = 50_000


@dataclass
class Tracked:
    dispatch_id: str
    room: str
    agent_name: str
    created: float  # monotonic s
    deadline: float
    phase: Phase = Phase.WAITING
    redispatched: bool = False  # this entry is the one re-created dispatch
    job_ids: set[str] = field(default_factory=set)
    expires: float = 0.0
    job_request_after_s: float | None = None  # for `voiceops dispatch`'s timeline
    joined_after_s: float | None = None
    diagnosis: str | None = None  # why no agent came, once the monitor decided it will not

    def timeline(self) -> dict[str, object]:
        return {"dispatch_id": self.dispatch_id, "room": self.room, "phase": str(self.phase),
                "deadline_s": self.deadline - self.created,
                "job_request_after_s": self.job_request_after_s,
                "joined_after_s": self.joined_after_s, "redispatched": self.redispatched,
                "diagnosis": self.diagnosis}

    def step(self, inp: Input) -> bool:
        """Apply one input; False (and no change) when the table has no such transition."""
        nxt = _TRANSITIONS.get((self.phase, inp))
        if nxt is None:
            return False
        self.phase = nxt
        return True


@dataclass(frozen=True)
class Expired:
    """An entry that left without the expected next step (for the media-path diagnosis)."""

    dispatch_id: str
    room: str
    phase: Phase


class Correlator:
    def __init__(self, options: CorrelateOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self._clock = clock
        self._entries: dict[str, Tracked] = {}  # insertion order = creation order
        self._by_job: dict[str, str] = {}
        self._by_room: dict[str, list[str]] = {}
        self._deadlines: deque[tuple[float, str]] = deque()  # monotonic: appended in order
        self._expiry: list[tuple[float, str]] = []  # heap, lazily invalidated
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, dispatch_id: str) -> Tracked | None:
        return self._entries.get(dispatch_id)

    def dispatched(self, dispatch_id: str, room: str, agent_name: str, *,
                   created: float | None = None, redispatched: bool = False) -> bool:
        """Track a new dispatch; False for one already tracked (a reused dispatch)."""
        if not dispatch_id or dispatch_id in self._entries:
            return False
        now = self._clock() if created is None else created
        entry = Tracked(dispatch_id, room, agent_name, created=now,
                        deadline=now + self.options.deadline_s, redispatched=redispatched)
        self._entries[dispatch_id] = entry
        self._by_room.setdefault(room, []).append(dispatch_id)
        self._deadlines.append((entry.deadline, dispatch_id))
        self._set_expiry(entry, now + self.options.max_age_s)
        while len(self._entries) > self.options.max_entries:
            self._drop(next(iter(self._entries)))
            self.evicted += 1
        return True

    def job_request(self, dispatch_id: str, job_id: str, room: str = "") -> float | None:
        """A JobRequest for a tracked dispatch: seconds since it was created, else None."""
        entry = self._entries.get(dispatch_id)
        if entry is None:
            return None
        if job_id:
            entry.job_ids.add(job_id)
            self._by_job[job_id] = dispatch_id
        if not entry.step(Input.JOB_REQUEST):
            return None  # a second JobRequest (LiveKit tried another worker): observed once
        self._set_expiry(entry, self._clock() + self.options.join_timeout_s)
        entry.job_request_after_s = self._clock() - entry.created
        return entry.job_request_after_s

    def agent_joined(self, *, job_id: str = "", dispatch_id: str = "", room: str = "",
                     identity: str = "") -> tuple[Tracked, float] | None:
        """The first join of a tracked dispatch: (entry, seconds since created), else None."""
        if not job_id and identity.startswith(AGENT_IDENTITY_PREFIX):
            job_id = identity[len(AGENT_IDENTITY_PREFIX):]
        entry = self._find_for_join(job_id, dispatch_id, room)
        if entry is None or not entry.step(Input.JOINED):
            return None
        if job_id:
            entry.job_ids.add(job_id)
            self._by_job[job_id] = entry.dispatch_id
        self._set_expiry(entry, self._clock() + self.options.linger_s)
        entry.joined_after_s = self._clock() - entry.created
        return entry, entry.joined_after_s

    def _find_for_join(self, job_id: str, dispatch_id: str, room: str) -> Tracked | None:
        """Only the dispatch whose job this is: a join (a replayed webhook, another dispatch's
        agent in the same room) never answers a dispatch that has no such job."""
        did = self._by_job.get(job_id, "") if job_id else ""
        entry = self._entries.get(did)
        if entry is None or (dispatch_id and dispatch_id != entry.dispatch_id):
            return None
        return entry

    def knows_job(self, job_id: str) -> bool:
        """A JobRequest (or ListDispatch) tied ``job_id`` to a tracked dispatch."""
        return bool(job_id) and self._by_job.get(job_id, "") in self._entries

    def join_failed(self, dispatch_id: str) -> Tracked | None:
        """The job of a REQUESTED dispatch ended without joining: the entry, now handled."""
        entry = self._entries.get(dispatch_id)
        if entry is None or not entry.step(Input.JOIN_FAILED):
            return None
        self._set_expiry(entry, self._clock() + self.options.linger_s)
        return entry

    def diagnosed(self, dispatch_id: str, diagnosis: str) -> None:
        """Record why a tracked dispatch got no agent (kept until the entry leaves)."""
        entry = self._entries.get(dispatch_id)
        if entry is not None:
            entry.diagnosis = diagnosis

    def take_due(self) -> list[Tracked]:
        """Entries past their deadline with no JobRequest; each moves to CONFIRMING."""
        now = self._clock()
        due: list[Tracked] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, did = self._deadlines.popleft()
            entry = self._entries.get(did)
            if entry is not None and entry.step(Input.DEADLINE):
                due.append(entry)
        return due

    def confirmed(self, dispatch_id: str, *, job_found: bool,
                  job_ids: tuple[str, ...] = ()) -> Verdict:
        """The ListDispatch answer for a CONFIRMING entry (with the jobs it lists)."""
        entry = self._entries.get(dispatch_id)
        if entry is None or entry.phase is not Phase.CONFIRMING:
            return Verdict.IGNORED
        for job_id in job_ids:  # another host's worker took it: its join may now count
            entry.job_ids.add(job_id)
            self._by_job[job_id] = dispatch_id
        if job_found:
            entry.step(Input.CONFIRMED_ANSWERED)
            self._set_expiry(entry, self._clock() + self.options.join_timeout_s)
            return Verdict.ANSWERED
        entry.step(Input.CONFIRMED_MISSING)
        self._set_expiry(entry, self._clock() + self.options.linger_s)
        if self.options.redispatch and not entry.redispatched:
            return Verdict.REDISPATCH
        return Verdict.UNANSWERED

    def sweep(self) -> list[Expired]:
        """Drop entries whose time is up; report those that never got their JobRequest/join."""
        now = self._clock()
        out: list[Expired] = []
        while self._expiry and self._expiry[0][0] <= now:
            at, did = heapq.heappop(self._expiry)
            entry = self._entries.get(did)
            if entry is None or entry.expires != at:
                continue  # superseded by a later expiry
            if entry.phase in (Phase.REQUESTED, Phase.WAITING, Phase.CONFIRMING):
                out.append(Expired(did, entry.room, entry.phase))
            self._drop(did)
        return out

    def _set_expiry(self, entry: Tracked, at: float) -> None:
        at = min(at, entry.created + self.options.max_age_s)
        entry.expires = at
        heapq.heappush(self._expiry, (at, entry.dispatch_id))
        if len(self._expiry) > 4 * len(self._entries) + 64:
            self._compact_expiry()

    def _compact_expiry(self) -> None:
        """Rebuild the heap from live entries so stale items cannot pile up."""
        self._expiry = [(e.expires, d) for d, e in self._entries.items()]
        heapq.heapify(self._expiry)

    def _drop(self, dispatch_id: str) -> None:
        entry = self._entries.pop(dispatch_id)
        for job_id in entry.job_ids:
            if self._by_job.get(job_id) == dispatch_id:
                del self._by_job[job_id]
        rooms = self._by_room.get(entry.room)
        if rooms is not None:
            rooms.remove(dispatch_id)
            if not rooms:
                del self._by_room[entry.room]
        if len(self._deadlines) > 4 * len(self._entries) + 64:
            self._deadlines = deque((d, i) for d, i in self._deadlines if i in self._entries)
