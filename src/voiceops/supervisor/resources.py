"""Resource samples of a child's whole process tree (main process plus every descendant).

Memory is proportional set size (PSS, from ``/proc/PID/smaps_rollup``): each page counts once
in total, split among the processes that share it. Summed RSS counts a page shared by a
worker and its forked job processes once per process (9x a worker's real footprint was
measured), so a limit on it would restart healthy workers. Summed PSS over a tree is what the
tree really costs the machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

_PSS_PREFIX = b"Pss:"


def pss_bytes(p: psutil.Process) -> int:
    """The process's PSS; its RSS where smaps_rollup cannot be read (another user, old kernel)."""
    try:
        with open(f"/proc/{p.pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(_PSS_PREFIX):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return int(p.memory_info().rss)


@dataclass(frozen=True)
class TreeSample:
    rss_bytes: int  # summed RSS: cheap (statm), an upper bound of the PSS
    pss_bytes: int | None  # None: not read this time (smaps_rollup walks every mapping)
    cpu_s: float


def sample_tree(procs: Iterable[psutil.Process], *, pss: bool = True) -> TreeSample:
    """Summed RSS, PSS (when ``pss``) and CPU time (user + system seconds, incl. reaped
    children) of ``procs``."""
    rss, pss_sum, cpu = 0, 0, 0.0
    for p in procs:
        try:
            with p.oneshot():
                if not p.is_running():
                    continue  # the pid was reused since we listed it
                rss += int(p.memory_info().rss)
                if pss:
                    pss_sum += pss_bytes(p)
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
        except (psutil.Error, OSError):
            continue  # exited between listing and sampling
    return TreeSample(rss, pss_sum if pss else None, cpu)


def memory_figure(sample: TreeSample, last_pss: int) -> int:
    """The tree's PSS: read now, or the last reading capped by today's RSS (PSS <= RSS), so a
    tree that shrank is never judged by a stale, larger figure."""
    if sample.pss_bytes is not None:
        return sample.pss_bytes
    return min(last_pss, sample.rss_bytes)
