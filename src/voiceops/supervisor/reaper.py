"""No escapes: the supervisor is a child subreaper, and every orphan is killed and reaped.

Descendants of a dead child re-parent to us (``PR_SET_CHILD_SUBREAPER``), not to PID 1.
Process identity always goes through :class:`psutil.Process`, which checks the creation
time before signalling, so a reused PID is never hit. Reaping uses ``waitpid(pid)`` on
specific adopted PIDs only, never ``waitpid(-1)``: that would steal the exit statuses
asyncio's child watcher is waiting for.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Collection
from typing import Final

import psutil

from voiceops.supervisor.proctable import ProcTable

PR_SET_CHILD_SUBREAPER: Final = 36
log = logging.getLogger("voiceops.supervisor.reaper")


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:
        log.warning("subreaper_unavailable error=%s", exc)
        return False
    return True


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is dead; it only waits to be reaped)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill(procs: Collection[psutil.Process]) -> int:
    """SIGKILL each live process (creation time checked by psutil); return how many."""
    killed = 0
    for p in procs:
        if not alive(p):
            continue
        try:
            p.send_signal(signal.SIGKILL)
            killed += 1
        except psutil.Error:
            pass
    return killed


def group_members(pgid: int, within: Collection[psutil.Process]) -> list[psutil.Process]:
    """Processes of our own tree still in process group ``pgid``."""
    out = []
    for p in within:
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p)
        except OSError:
            pass
    return out


def adopted(managed_pids: Collection[int], spared_groups: Collection[int] = (),
            table: ProcTable | None = None) -> list[psutil.Process]:
    """Our direct children that we did not spawn and that left our process group: orphans.

    Members of ``spared_groups`` (the groups of children still running or settling) are left
    to their own child's exit handling: they are usually a worker's job processes finishing
    their own shutdown a moment after the worker. ``table``: the tick's one look at /proc.
    """
    own_pgid = os.getpgrp()
    if table is not None:
        out = []
        for pid in table.children(os.getpid()):
            pgid = table.entries[pid].pgid
            if pid not in managed_pids and pgid != own_pgid and pgid not in spared_groups:
                with contextlib.suppress(psutil.Error):
                    out.append(psutil.Process(pid))
        return out
    out = []
    for p in descendants_direct():
        if p.pid in managed_pids:
            continue
        try:
            pgid = os.getpgid(p.pid)
        except OSError:
            continue
        if pgid != own_pgid and pgid not in spared_groups:
            out.append(p)
    return out


def descendants_direct() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=False)
    except psutil.Error:
        return []


def reap(procs: Collection[psutil.Process]) -> int:
    """``waitpid(pid, WNOHANG)`` each adopted zombie; return how many were reaped."""
    reaped = 0
    for p in procs:
        try:
            pid, _ = os.waitpid(p.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        reaped += pid != 0
    return reaped


def sweep_orphans(managed_pids: Collection[int], spared_groups: Collection[int] = (),
                  table: ProcTable | None = None) -> int:
    """Kill every live adopted orphan and reap the dead ones; return how many were killed."""
    orphans = adopted(managed_pids, spared_groups, table)
    killed = kill(orphans)
    reap(orphans)
    return killed
