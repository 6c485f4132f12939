"""Resource samples of a child's whole process tree (main process plus every descendant)."""

from __future__ import annotations

from collections.abc import Iterable

import psutil


def sample_tree(procs: Iterable[psutil.Process]) -> tuple[int, float]:
    """Sum RSS (bytes) and CPU time (user + system seconds, incl. reaped children) of ``procs``."""
    rss, cpu = 0, 0.0
    for p in procs:
        try:
            with p.oneshot():
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue  # exited between listing and sampling
    return rss, cpu
