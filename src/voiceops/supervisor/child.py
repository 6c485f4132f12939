"""One spawned OS process (one generation of a managed child): spawn, signal, tree, wait.

This is the only place a child is created. Each child gets its own process group and a
pidfd right after spawn, so signals go to *that* process even if its PID is later reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator, Mapping
from typing import Final

import psutil

from voiceops.events import EVENTS_ENV, PROCESS_ENV
from voiceops.lifeline import SUPERVISOR_PID_ENV
from voiceops.supervisor import reaper
from voiceops.supervisor.logs import ChildOutput, Forwarder
from voiceops.supervisor.proctable import ProcTable
from voiceops.supervisor.spec import ChildSpec

# Never let a child talk to systemd as if it were the main PID (NotifyAccess=main anyway).
STRIPPED_ENV: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                       "LISTEN_PID", "LISTEN_FDNAMES")
PIPE_DRAIN_S: Final = 2.0  # after exit, how long to wait for the last output
# After a child exits, how long its descendants get to finish their own shutdown before they
# count as orphans and are killed (livekit-agents' job processes exit a moment after it).
SETTLE_S: Final = 2.0
SETTLE_POLL_S: Final = 0.05
log = logging.getLogger("voiceops.supervisor.child")


class ChildRegistry:
    """PIDs we spawned, so the orphan sweep never mistakes a fresh child for an orphan."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.groups: set[int] = set()  # process groups of children running or settling
        self.spawning = 0

    @contextlib.contextmanager
    def spawn_window(self) -> Iterator[None]:
        self.spawning += 1
        try:
            yield
        finally:
            self.spawning -= 1


def child_env(spec: ChildSpec, events_path: str,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in STRIPPED_ENV}
    env.update(dict(spec.env))
    env[EVENTS_ENV] = events_path
    env[PROCESS_ENV] = spec.name
    env[SUPERVISOR_PID_ENV] = str(os.getpid())  # children arm PR_SET_PDEATHSIG against us
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A running (or finished) OS process with its output pumps and its known descendants."""

    def __init__(self, proc: asyncio.subprocess.Process, output: ChildOutput,
                 registry: ChildRegistry) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.output = output
        self._registry = registry
        self._pidfd = _pidfd_open(proc.pid)
        self.ps: psutil.Process | None = _ps(proc.pid)
        self.tree: dict[int, psutil.Process] = {}  # descendants seen on any tick
        self._starts: dict[int, int] = {}  # their start times (the pid-reuse check)
        self.returncode: int | None = None
        self._pumps = [asyncio.ensure_future(output.pump(stream, name))
                       for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
                       if stream is not None]

    @classmethod
    async def spawn(cls, spec: ChildSpec, env: dict[str, str], forwarder: Forwarder,
                    registry: ChildRegistry) -> Child:
        with registry.spawn_window():
            proc = await asyncio.create_subprocess_exec(
                *spec.argv, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                process_group=0)
            registry.pids.add(proc.pid)
            registry.groups.add(proc.pid)  # process_group=0: its group id is its pid
        return cls(proc, ChildOutput(spec.name, forwarder), registry)

    def send(self, sig: signal.Signals) -> bool:
        """Signal the main process only, through its pidfd; False if it is already gone."""
        if self.returncode is not None:
            return False
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            elif self.ps is not None:
                self.ps.send_signal(sig)
            else:
                return False
        except (ProcessLookupError, psutil.Error):
            return False
        return True

    def refresh_tree(self, table: ProcTable | None = None) -> None:
        """Remember every descendant now, so none escapes if the child dies before the next
        look; ``table`` is the tick's one look at /proc (taken here when not given)."""
        table = table if table is not None else ProcTable.take()
        for pid in table.descendants(self.pid):
            start = table.entries[pid].start_ticks
            if self._starts.get(pid) != start:
                p = _ps(pid)
                if p is not None:
                    self.tree[pid], self._starts[pid] = p, start
        self.tree = {pid: p for pid, p in self.tree.items()
                     if table.alive(pid, self._starts[pid])}
        self._starts = {pid: self._starts[pid] for pid in self.tree}

    def members(self) -> list[psutil.Process]:
        """Live descendants: the remembered ones plus anything in our tree still in its group."""
        self.refresh_tree()
        group = reaper.group_members(self.pid, reaper.descendants(os.getpid()))
        found = {p.pid: p for p in (*self.tree.values(), *group)
                 if p.pid != self.pid and reaper.alive(p)}
        return list(found.values())

    def kill_tree(self) -> None:
        """SIGKILL the main process and its whole tree (group members and escaped sessions)."""
        self.send(signal.SIGKILL)
        reaper.kill(self.members())

    def live_processes(self) -> list[psutil.Process]:
        procs = [p for p in self.tree.values() if reaper.alive(p)]
        if self.ps is not None and self.returncode is None and reaper.alive(self.ps):
            procs.append(self.ps)
        return procs

    async def wait(self) -> int:
        """Wait for the exit; then kill survivors and collect the last output."""
        rc = await self.proc.wait()
        self.returncode = rc
        self._registry.pids.discard(self.pid)
        self.close_pidfd()
        return rc

    def sweep(self) -> int:
        """Kill the descendants that outlived the main process; return how many."""
        return reaper.kill(self.members())

    async def settle(self, grace_s: float = SETTLE_S) -> int:
        """After the exit: let descendants finish on their own for ``grace_s``, then kill the
        rest; return how many had to be killed (true orphans)."""
        members = self.members()
        deadline = asyncio.get_running_loop().time() + grace_s
        # A short bounded poll: these are not our children, so there is nothing to await.
        while any(reaper.alive(p) for p in members) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(SETTLE_POLL_S)
        killed = self.sweep()
        self._registry.groups.discard(self.pid)
        return killed

    async def drain_output(self) -> None:
        done, pending = await asyncio.wait(self._pumps, timeout=PIPE_DRAIN_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("log_pump_failed process=%s error=%r", self.output.name,
                            task.exception())

    def close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None  # already gone, or no pidfd here: psutil's create-time check remains


def _ps(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
