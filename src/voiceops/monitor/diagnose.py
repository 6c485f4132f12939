"""One-line diagnoses that tell the operator what to do. Pure functions over :class:`Facts`.

The dispatch-path diagnosis (for DispatchUnanswered and HeartbeatFailed) checks the likely
causes in order, most fundamental first: LiveKit itself, the agent-name mismatch (the
classic failure), no worker registered, every worker at or above LiveKit's target load,
every worker full or draining, the media path (JobRequests arrive but no agent joins), and
finally "LiveKit sent nothing".

Each check names the evidence that tells its cause apart (which worker, which name, which
step, what LiveKit's own ListDispatch says) and returns None when that evidence is absent, as
it is in a healthy deployment; ``tests/integration/monitor`` checks exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceops.monitor.reach import Reachability, livekit_diagnosis
from voiceops.text import plural

# The LiveKit server offers a job only to workers scoring 0.7 - load > 0 (Go:
# agent.DefaultTargetLoad), whatever status they report.
SERVER_TARGET_LOAD = 0.7


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker's livekit-agents health server says at GET /worker."""

    process: str
    agent_name: str
    active_jobs: int = 0
    load: float = 0.0


@dataclass(frozen=True)
class Listing:
    """What LiveKit's ListDispatch said about one dispatch (LiveKit's own state)."""

    room: str
    dispatch_id: str
    answered: bool = True  # False: ListDispatch itself failed
    found: bool = False  # the dispatch is listed in the room
    jobs: int = 0  # jobs LiveKit created for it (0: it offered the dispatch to no worker)


@dataclass(frozen=True)
class Facts:
    agent_name: str  # the name dispatches ask for (agent.name)
    livekit_url: str
    livekit: Reachability = field(default_factory=Reachability)
    pool: dict[str, Any] = field(default_factory=dict)  # status()["pool"]
    processes: Sequence[dict[str, Any]] = ()  # status()["processes"]
    workers: Sequence[WorkerInfo] = ()  # from /worker, for the workers that answered
    load_threshold: float = 0.7
    joins_missing: bool = False  # JobRequests came but agents did not join
    listing: Listing | None = None  # ListDispatch for the dispatch or probe being diagnosed
    last_job_request_s: float | None = None  # seconds since any worker of ours got one


def _workers(processes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in processes if p.get("kind") == "worker"]


def _quote_names(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _worker_names(procs: Sequence[dict[str, Any]]) -> str:
    """``worker-0 (AW_x), worker-1 (AW_y)``: our process names with LiveKit's worker ids."""
    return ", ".join(f"{p.get('name', '?')} ({p['worker_id']})" if p.get("worker_id")
                     else str(p.get("name", "?")) for p in procs)


def name_mismatch(facts: Facts) -> str | None:
    """Workers registered under names other than the one dispatched."""
    # /worker is what LiveKit was told; the status' name is only what the worker claimed.
    by_name: dict[str, list[str]] = {}
    for w in facts.workers:
        if w.agent_name:
            by_name.setdefault(w.agent_name, []).append(w.process)
    if not by_name:
        for p in _workers(facts.processes):
            if p.get("state") == "ready" and p.get("agent_name"):
                by_name.setdefault(p["agent_name"], []).append(p.get("name", "?"))
    if not by_name or facts.agent_name in by_name:
        return None
    names = sorted(by_name)
    who = "; ".join(f"{', '.join(by_name[n])} as '{n}'" for n in names)
    return (f"workers registered as {_quote_names(names)} but dispatches ask for "
            f"'{facts.agent_name}' ({who}, from each worker's /worker endpoint): make the worker "
            "program use agent.name, or set agent.name to the worker's name")


def _states(workers: Sequence[dict[str, Any]]) -> str:
    """``worker-0 backoff (last exit: crash(1)), worker-1 starting``."""
    parts = []
    for p in workers:
        text = f"{p.get('name', '?')} {p.get('state', '?')}"
        if p.get("state") in ("backoff", "parked", "exited") and p.get("last_exit"):
            text += f" (last exit: {p['last_exit']})"
        parts.append(text)
    return ", ".join(parts) or "none running"


def no_worker(facts: Facts) -> str | None:
    ready = int(facts.pool.get("ready", 0))
    if ready > 0 or facts.workers:
        return None
    desired = int(facts.pool.get("desired", len(_workers(facts.processes))))
    if desired == 0:
        return ("no worker registered with LiveKit: workers.count is 0 here and no worker "
                "elsewhere answered; scale up with `voiceops scale N`")
    return (f"no worker registered with LiveKit: {ready} of {plural(desired, 'worker')} ready; "
            f"check `voiceops status` and worker logs ({_states(_workers(facts.processes))})")


def over_target_load(facts: Facts) -> str | None:
    """Every worker that could take a job reports load >= 0.7: LiveKit sends no JobRequest."""
    procs = [p for p in _workers(facts.processes) if p.get("state") in ("ready", "draining")]
    info = {w.process: w for w in facts.workers}
    loads = [info[p["name"]].load for p in procs if p.get("name") in info]
    if not loads or len(loads) < len(procs) or min(loads) < SERVER_TARGET_LOAD:
        return None
    shown = ", ".join(f"{load:.2f}" for load in sorted(loads))
    return (f"every worker reports load ≥ {SERVER_TARGET_LOAD}: LiveKit offers no job "
            f"(loads {shown}; LiveKit's target load is {SERVER_TARGET_LOAD}): livekit-agents' load "
            "is the machine's CPU, so free the CPU, add machines, or set workers.max_jobs to "
            "count jobs instead")


def all_full(facts: Facts) -> str | None:
    """Every registered worker is at its load threshold or draining."""
    procs = [p for p in _workers(facts.processes) if p.get("state") in ("ready", "draining")]
    if not procs:
        return None
    info = {w.process: w for w in facts.workers}

    # A worker is full at its own threshold (1.0: never by itself), and at LiveKit's 0.7 anyway.
    threshold = min(facts.load_threshold, SERVER_TARGET_LOAD)

    def busy(p: dict[str, Any]) -> str | None:
        w = info.get(p.get("name", ""))
        if p.get("state") == "draining":
            return f"{p.get('name')} draining"
        if w is not None and w.load >= threshold:
            return f"{p.get('name')} at load {w.load:.2f}"
        return None

    why = [busy(p) for p in procs]
    if not all(why):
        return None
    draining = sum(1 for p in procs if p.get("state") == "draining")
    jobs = sum(int(p.get("active_jobs") or 0) for p in procs)
    return (f"all {len(procs)} workers are full or draining ({draining} draining, {jobs} active "
            f"jobs, load threshold {threshold}: {', '.join(filter(None, why))}): scale up "
            f"with `voiceops scale {len(procs) + 1}`")


def media_path(facts: Facts) -> str | None:
    if not facts.joins_missing:
        return None
    return ("JobRequests arrive but no agent joins the room: the media path fails; check the "
            "LiveKit server's UDP/TCP media ports (rtc.port_range, TURN) and the job logs")


def _listing_evidence(listing: Listing) -> str | None:
    """LiveKit's own record of the dispatch, when it shows that no job was made."""
    if not listing.answered:
        return f"LiveKit did not answer ListDispatch for room '{listing.room}'"
    if not listing.found:
        return (f"LiveKit's ListDispatch for room '{listing.room}' no longer lists dispatch "
                f"{listing.dispatch_id}")
    if listing.jobs == 0:
        return (f"LiveKit's ListDispatch for room '{listing.room}' shows dispatch "
                f"{listing.dispatch_id} with no job")
    return None  # LiveKit made a job: it did send a JobRequest somewhere


def nothing_sent(facts: Facts) -> str | None:
    """Registered, free workers of the right name, and LiveKit made no job for the dispatch."""
    evidence = _listing_evidence(facts.listing) if facts.listing is not None else None
    if facts.listing is not None and evidence is None:
        return None
    ready = [p for p in _workers(facts.processes) if p.get("state") == "ready"]
    last = ("never" if facts.last_job_request_s is None
            else f"{facts.last_job_request_s:.0f} s ago")
    seen = f"; the last JobRequest any of ours got: {last}"
    return (f"workers are registered as '{facts.agent_name}' ({_worker_names(ready)}) but "
            f"LiveKit sent no JobRequest{': ' + evidence if evidence else ''}{seen}; check that "
            f"workers and proxy use the same LiveKit server (livekit.url = {facts.livekit_url})")


def dispatch_path(facts: Facts) -> str:
    """Why dispatches go unanswered (or probes fail), as one actionable line."""
    if facts.livekit.last_failure is not None:
        return livekit_diagnosis(facts.livekit, facts.livekit_url)
    for check in (name_mismatch, no_worker, over_target_load, all_full, media_path,
                  nothing_sent):
        found = check(facts)
        if found:
            return found
    jobs = facts.listing.jobs if facts.listing is not None else 0
    return (f"no cause found: LiveKit lists {plural(jobs, 'job')} for dispatch "
            f"{facts.listing.dispatch_id if facts.listing else '?'}, so a worker elsewhere took "
            "it or its events were lost (see voiceops_events_dropped_total)")


def no_ready_workers(pool: dict[str, Any], processes: Sequence[dict[str, Any]]) -> str:
    workers = _workers(processes)
    states: dict[str, int] = {}
    for p in workers:
        states[p.get("state", "?")] = states.get(p.get("state", "?"), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none running"
    desired = int(pool.get("desired", len(workers)))
    return (f"no worker registered with LiveKit: {pool.get('ready', 0)} of "
            f"{plural(desired, 'worker')} ready ({summary}); check `voiceops status` and worker "
            f"logs ({_states(workers)})")


def crash_loop(parked: Sequence[dict[str, Any]]) -> str:
    names = ", ".join(p.get("name", "?") for p in parked)
    held = next((p for p in parked if p.get("config_error")), None)
    if held is not None:  # exit 78: the child named the key; retrying cannot help
        return (f"{held.get('name', '?')} is held by a config error: {held['config_error']}: "
                f"fix it, then reload (`systemctl reload voiceops`)")
    last = parked[0].get("last_exit") or "unknown"
    return (f"{names} parked after crashing repeatedly (last exit: {last}): read its log "
            "(`journalctl -u voiceops`), fix the cause, then `voiceops restart "
            f"{parked[0].get('name', 'NAME')}`")
