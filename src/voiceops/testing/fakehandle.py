"""Fakes for the supervisor's OS seam: children that are only objects, a clock that moves
when told, and the task owner that lets a test run the supervisor's tasks to a standstill.

A :class:`FakeChild` never exits on its own: the test decides (``exit(rc)``), except that
``kill_tree`` is a SIGKILL, which ends it at once (``-SIGKILL``), as the kernel would. Nothing
here spawns, signals or reads a real process, and nothing waits on time.
"""

from __future__ import annotations

import asyncio
import errno
import io
import random
import signal
from collections.abc import Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

import psutil

from voiceops.metrics import Metrics
from voiceops.supervisor.child import ChildRegistry
from voiceops.supervisor.handle import Host
from voiceops.supervisor.logs import ChildOutput, Forwarder
from voiceops.supervisor.process import Runtime
from voiceops.supervisor.proctable import ProcTable
from voiceops.supervisor.spec import ChildSpec

FIRST_PID: Final = 100_000  # fake PIDs: never signalled, so any number would do
SETTLE_LIMIT_S: Final = 5.0  # a hang in the code under test fails the test instead


class FakeChild:
    """A :class:`~voiceops.supervisor.handle.ChildHandle` with no process behind it."""

    def __init__(self, spec: ChildSpec, env: dict[str, str], output: ChildOutput, pid: int,
                 host: FakeHost) -> None:
        self.spec, self.env, self.output, self.pid = spec, env, output, pid
        self.signals: list[signal.Signals] = []  # every signal sent, in order
        self.orphans = 0  # what settle() reports as descendants it had to kill
        self.tree_refreshes = 0
        self._host = host
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiter: asyncio.Task[Any] | None = None

    @property
    def alive(self) -> bool:
        return not self._exit.done()

    def exit(self, returncode: int) -> None:
        """The process ends with ``returncode`` (negative: killed by that signal)."""
        if self.alive:
            self._exit.set_result(returncode)

    def say(self, *lines: str) -> None:
        """Lines the child printed (its output tail, as a crash report shows it)."""
        self.output.tail.extend(lines)

    def send(self, sig: signal.Signals) -> bool:
        if not self.alive:
            return False
        self.signals.append(sig)
        return True

    def kill_tree(self) -> None:
        self.send(signal.SIGKILL)
        self.exit(-signal.SIGKILL)

    def refresh_tree(self, table: ProcTable | None = None) -> None:
        self.tree_refreshes += 1

    def live_processes(self) -> list[psutil.Process]:
        return []

    async def wait(self) -> int:
        self.waiter = asyncio.current_task()
        self._host.parked.set()
        return await self._exit

    async def settle(self) -> int:
        return self.orphans

    async def drain_output(self) -> None:
        return None


class FakeHost:
    """Spawns :class:`FakeChild` objects; ``/proc`` is empty and the OOM count is ``oom_kills``."""

    def __init__(self) -> None:
        self.children: list[FakeChild] = []
        self.fail_spawn: set[str] = set()  # names whose spawn fails with ENOENT
        self.spawn_gate: asyncio.Event | None = None  # set: spawns wait until it is set
        self.at_gate = asyncio.Event()  # a spawn is waiting at the gate
        self.oom_kills: int | None = None
        self.orphans = 0  # what the next orphan sweep kills
        self.sweeps = 0
        self.parked = asyncio.Event()  # a task just started waiting on a child

    def host(self) -> Host:
        return Host(spawn=self.spawn, proc_table=lambda: ProcTable({}),
                    sweep_orphans=self.sweep, oom_kills=lambda: self.oom_kills)

    async def spawn(self, spec: ChildSpec, env: dict[str, str], forwarder: Forwarder,
                    registry: ChildRegistry) -> FakeChild:
        if self.spawn_gate is not None:
            self.at_gate.set()
            await self.spawn_gate.wait()
        if spec.name in self.fail_spawn:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", spec.argv[0])
        child = FakeChild(spec, env, ChildOutput(spec.name, forwarder),
                          FIRST_PID + len(self.children), self)
        self.children.append(child)
        return child

    def sweep(self, pids: Collection[int], groups: Collection[int],
              table: ProcTable | None) -> int:
        self.sweeps += 1
        killed, self.orphans = self.orphans, 0
        return killed

    def latest(self, name: str) -> FakeChild:
        """The newest child spawned under ``name``."""
        return next(c for c in reversed(self.children) if c.spec.name == name)

    def alive(self, name: str) -> list[FakeChild]:
        return [c for c in self.children if c.spec.name == name and c.alive]


@dataclass
class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class FakeWorld:
    """A :class:`Runtime` on fakes, plus the tasks it created (see :meth:`settle`)."""

    host: FakeHost = field(default_factory=FakeHost)
    clock: FakeClock = field(default_factory=FakeClock)
    metrics: Metrics = field(default_factory=lambda: Metrics("test-agent"))
    forwarder: Forwarder = field(default_factory=lambda: Forwarder(io.BytesIO()))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    wakes: int = 0

    def runtime(self, **overrides: Any) -> Runtime:
        return Runtime(self.metrics, self.forwarder, ChildRegistry(), "/nonexistent/events.sock",
                       self.create_task, self.wake, self.clock, random.Random(7),
                       base_env={}, host=self.host.host(), **overrides)

    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    def wake(self) -> None:
        self.wakes += 1

    async def settle(self) -> None:
        """Run the created tasks until each has finished or waits on a live fake child."""
        async with asyncio.timeout(SETTLE_LIMIT_S):
            while busy := self._busy():
                self.host.parked.clear()
                parked = asyncio.ensure_future(self.host.parked.wait())
                await asyncio.wait([*busy, parked], return_when=asyncio.FIRST_COMPLETED)
                parked.cancel()
        for task in [t for t in self.tasks if t.done()]:
            self.tasks.remove(task)
            task.result()  # a failure in the code under test fails the test

    def _busy(self) -> list[asyncio.Task[None]]:
        waiting = {c.waiter for c in self.host.children if c.alive}
        return [t for t in self.tasks if not t.done() and t not in waiting]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.forwarder.close()

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)
