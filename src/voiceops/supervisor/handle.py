"""The seam between the supervisor and the OS: a :class:`ChildHandle` per spawned child, and
the :class:`Host` that spawns them and looks at ``/proc``.

The real ones are :class:`~voiceops.supervisor.child.Child` and ``Host()``; tests inject
:mod:`voiceops.testing.fakehandle`, so the pool and its state machine run without a process.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import psutil

from voiceops.supervisor import oom, reaper
from voiceops.supervisor.child import Child, ChildRegistry
from voiceops.supervisor.logs import ChildOutput, Forwarder
from voiceops.supervisor.proctable import ProcTable
from voiceops.supervisor.spec import ChildSpec


class ChildHandle(Protocol):
    """One spawned generation of a managed child, as the supervisor uses it."""

    @property
    def pid(self) -> int: ...

    @property
    def output(self) -> ChildOutput: ...

    def send(self, sig: signal.Signals) -> bool:
        """Signal the main process only; False if it is already gone."""

    def kill_tree(self) -> None:
        """SIGKILL the main process and every descendant."""

    def refresh_tree(self, table: ProcTable | None = None) -> None:
        """Remember its descendants now (``table``: this tick's look at /proc)."""

    def live_processes(self) -> list[psutil.Process]:
        """The processes of its tree still running (for resource samples)."""

    async def wait(self) -> int:
        """Wait for the main process to exit; its return code."""

    async def settle(self) -> int:
        """After the exit: kill descendants that outlive a grace; how many were killed."""

    async def drain_output(self) -> None:
        """After the exit: collect the last output."""


Spawner = Callable[[ChildSpec, dict[str, str], Forwarder, ChildRegistry], Awaitable[ChildHandle]]
Sweeper = Callable[[Collection[int], Collection[int], ProcTable | None], int]


@dataclass(frozen=True)
class Host:
    """What the supervisor asks of the OS about children (real by default)."""

    spawn: Spawner = field(default=Child.spawn)
    proc_table: Callable[[], ProcTable] = field(default=ProcTable.take)
    sweep_orphans: Sweeper = field(default=reaper.sweep_orphans)
    oom_kills: Callable[[], int | None] = field(default=oom.oom_kill_count)
