"""Who may send an event: only a process in the tree of the child it claims to be.

The event socket is 0600, so only the service user can reach it, but any process of that user
could forge ``dispatch_created`` or ``job_request`` and make metrics and alerts lie. The kernel
tells us each sender's pid (SCM_CREDENTIALS); an event is accepted only when that pid is the
claimed child (``process``) or one of its descendants (job processes, forkserver children).
Nothing is cached: a pid reused by an unrelated process must not inherit a verdict. A child
itself costs a dict lookup; a job process a few /proc reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

import psutil

MAX_DEPTH: Final = 16  # worker → forkserver → job process is three; deeper is not ours
T = TypeVar("T")


def owner_name(sender: int, roots: Mapping[int, T]) -> T | None:
    """What ``roots`` (a child's pid → its names) holds for the child whose tree has ``sender``."""
    pid = sender
    for _ in range(MAX_DEPTH):
        if pid <= 1:
            return None
        if pid in roots:
            return roots[pid]
        try:
            pid = psutil.Process(pid).ppid()
        except psutil.Error:
            return None
    return None
