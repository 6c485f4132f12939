"""One-line diagnoses that tell the operator what to do. Pure functions over :class:`Facts`.

The dispatch-path diagnosis (for DispatchUnanswered and HeartbeatFailed) checks the likely
causes in order, most fundamental first: LiveKit itself, the agent-name mismatch (the
classic failure), no worker registered, every worker at or above LiveKit's target load,
every worker full or draining, the media path (JobRequests arrive but no agent joins), and
finally "LiveKit sent nothing".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceops.monitor.reach import Reachability, livekit_diagnosis

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
class Facts:
    agent_name: str  # the name dispatches ask for (agent.name)
    livekit_url: str
    livekit: Reachability = field(default_factory=Reachability)
    pool: dict[str, Any] = field(default_factory=dict)  # status()["pool"]
    processes: Sequence[dict[str, Any]] = ()  # status()["processes"]
    workers: Sequence[WorkerInfo] = ()  # from /worker, for the workers that answered
    load_threshold: float = 0.7
    joins_missing: bool = False  # JobRequests came but agents did not join


def _workers(processes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in processes if p.get("kind") == "worker"]


def _quote_names(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def name_mismatch(facts: Facts) -> str | None:
    """Workers registered under names other than the one dispatched."""
    # /worker is what LiveKit was told; the status' name is only what the worker claimed.
    names = {w.agent_name for w in facts.workers if w.agent_name}
    if not names:
        names = {p["agent_name"] for p in _workers(facts.processes)
                 if p.get("state") == "ready" and p.get("agent_name")}
    if not names or facts.agent_name in names:
        return None
    return (f"workers registered as {_quote_names(sorted(names))} but dispatches ask for "
            f"'{facts.agent_name}': make the worker program use agent.name, or set agent.name "
            "to the worker's name")


def no_worker(facts: Facts) -> str | None:
    ready = int(facts.pool.get("ready", 0))
    if ready > 0 or facts.workers:
        return None
    desired = int(facts.pool.get("desired", len(_workers(facts.processes))))
    if desired == 0:
        return ("no worker registered with LiveKit: workers.count is 0 here and no worker "
                "elsewhere answered; scale up with `voiceops scale N`")
    return (f"no worker registered with LiveKit: {ready} of {desired} workers ready; check "
            "`voiceops status` and worker logs")


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

    def busy(p: dict[str, Any]) -> bool:
        w = info.get(p.get("name", ""))
        full = w is not None and w.load >= threshold
        return p.get("state") == "draining" or full

    if not all(busy(p) for p in procs):
        return None
    draining = sum(1 for p in procs if p.get("state") == "draining")
    jobs = sum(int(p.get("active_jobs") or 0) for p in procs)
    return (f"all {len(procs)} workers are full or draining ({draining} draining, {jobs} active "
            f"jobs, load threshold {threshold}): scale up with "
            f"`voiceops scale {len(procs) + 1}`")


def media_path(facts: Facts) -> str | None:
    if not facts.joins_missing:
        return None
    return ("JobRequests arrive but no agent joins the room: the media path fails; check the "
            "LiveKit server's UDP/TCP media ports (rtc.port_range, TURN) and the job logs")


def nothing_sent(facts: Facts) -> str:
    return (f"workers are registered as '{facts.agent_name}' but LiveKit sent no JobRequest: "
            "check that workers and proxy use the same LiveKit server (livekit.url) and look "
            "for 'not dispatching agent job since no worker is available' in its log")


def dispatch_path(facts: Facts) -> str:
    """Why dispatches go unanswered (or probes fail), as one actionable line."""
    if facts.livekit.last_failure is not None:
        return livekit_diagnosis(facts.livekit, facts.livekit_url)
    for check in (name_mismatch, no_worker, over_target_load, all_full, media_path):
        found = check(facts)
        if found:
            return found
    return nothing_sent(facts)


def no_ready_workers(pool: dict[str, Any], processes: Sequence[dict[str, Any]]) -> str:
    workers = _workers(processes)
    states: dict[str, int] = {}
    for p in workers:
        states[p.get("state", "?")] = states.get(p.get("state", "?"), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none running"
    return (f"no worker registered with LiveKit: {pool.get('ready', 0)} of "
            f"{pool.get('desired', len(workers))} workers ready ({summary}); check "
            "`voiceops status` and worker logs")


def crash_loop(parked: Sequence[dict[str, Any]]) -> str:
    names = ", ".join(p.get("name", "?") for p in parked)
    last = parked[0].get("last_exit") or "unknown"
    return (f"{names} parked after crashing repeatedly (last exit: {last}): read its log "
            "(`journalctl -u voiceops`), fix the cause, then `voiceops restart "
            f"{parked[0].get('name', 'NAME')}`")
