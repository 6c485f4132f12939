"""Resource samples of a child's whole process tree (main process plus every descendant).

Memory is proportional set size (PSS, from ``/proc/PID/smaps_rollup``): each page counts once
in total, split among the processes that share it. Summed RSS counts a page shared by a
worker and its forked job processes once per process (9x a worker's real footprint was
measured), so a limit on it would restart healthy workers. Summed PSS over a tree is what the
tree really costs the machine.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def sample_tree(procs: Iterable[psutil.Process]) -> tuple[int, float]:
    """Sum PSS (bytes) and CPU time (user + system seconds, incl. reaped children) of ``procs``."""
    pss, cpu = 0, 0.0
    for p in procs:
        try:
            with p.oneshot():
                if not p.is_running():
                    continue  # the pid was reused since we listed it
                pss += pss_bytes(p)
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
        except (psutil.Error, OSError):
            continue  # exited between listing and sampling
    return pss, cpu
