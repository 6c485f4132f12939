"""Helpers for the worker tests: an event socket like the supervisor's, and worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from voiceops import events

HERE = Path(__file__).resolve().parent


class EventSink:
    """Binds a unix datagram socket (as the supervisor does) and collects decoded events."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="vo-wk-")  # short: sun_path holds 108 bytes
        self.path = os.path.join(self.dir, "events.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.setblocking(False)
        self.received: list[events.Event] = []

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def collect(self) -> None:
        """Take every datagram already queued on the socket."""
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            self.received.append(events.decode(data))  # raises on anything off-contract

    def of_type(self, cls: type[events.Event], after: Any = None, **fields: Any) -> list[Any]:
        """Received events of ``cls`` with these field values (only those after event ``after``)."""
        self.collect()
        start = 0 if after is None else next(
            i + 1 for i, e in enumerate(self.received) if e is after)
        return [e for e in self.received[start:] if isinstance(e, cls)
                and all(getattr(e, k) == v for k, v in fields.items())]

    async def wait_for(self, cls: type[events.Event], timeout_s: float = 30.0,
                       after: Any = None, **fields: Any) -> Any:
        """The first event of ``cls`` with these field values (already received, or arriving)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = self.of_type(cls, after, **fields)
            if found:
                return found[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(e.TYPE, getattr(e, "dispatch_id", "")) for e in self.received]
                raise AssertionError(f"no {cls.TYPE} {fields} within {timeout_s}s; got {seen}")
            try:
                data = await asyncio.wait_for(loop.sock_recv(self._sock, 65536), remaining)
            except TimeoutError:
                continue
            self.received.append(events.decode(data))  # raises on anything off-contract


def worker_config(path: Path, *, url: str, api_key: str, agent_name: str, entrypoint: str,
                  drain_timeout_s: float = 60.0, stt: str = "pocketsphinx",
                  tts: str = "piper") -> Path:
    """A worker config; the voice pipeline on the offline providers unless told otherwise."""
    path.write_text(
        f'[livekit]\nurl = "{url}"\napi_key = "{api_key}"\n\n'
        f'[agent]\nname = "{agent_name}"\n\n'
        f'[workers]\nentrypoint = "{entrypoint}"\nnum_idle_processes = 0\n'
        # LiveKit offers no job at load >= 0.7: count jobs, not this busy machine's CPU
        f'load_threshold = 1.0\nmax_jobs = 20\ndrain_timeout_s = {drain_timeout_s}\n\n'
        f'[voice]\nstt = "{stt}"\ntts = "{tts}"\n',
        encoding="utf-8")
    return path


@dataclass
class WorkerProcess:
    """``python -m voiceops.worker`` in its own process group, output in a log file."""

    proc: asyncio.subprocess.Process
    log_path: Path
    out_dir: Path
    pgid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pgid = self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout_s: float = 60.0) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"worker still running after {timeout_s}s; log:\n"
                                 f"{self.log_tail()}") from None

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def group_members(self) -> list[psutil.Process]:
        """Live (non-zombie) processes in the worker's process group, the worker included."""
        members = []
        for p in psutil.process_iter(["status"]):
            try:
                if os.getpgid(p.pid) == self.pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    members.append(p)
            except (ProcessLookupError, psutil.Error):
                continue
        return members

    async def assert_group_gone(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while (left := self.group_members()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"

    async def kill(self) -> None:
        """Teardown: SIGKILL the whole group, reap, and check nothing survived."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        await self.proc.wait()
        await self.assert_group_gone()


async def spawn_worker(config_path: Path, sink: EventSink, *, api_secret: str,
                       extra_env: dict[str, str] | None = None) -> WorkerProcess:
    out_dir = Path(tempfile.mkdtemp(prefix="vo-wk-out-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIVEKIT_", "VOICEOPS_", "LETTA_"))
           and k not in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY",
                         "CREDENTIALS_DIRECTORY")}
    env.update({
        "LIVEKIT_API_SECRET": api_secret,
        "VOICEOPS_EVENTS": sink.path,
        "VOICEOPS_PROCESS": "worker-test",
        "VOICEOPS_TEST_OUT": str(out_dir),
        "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])]),
        **(extra_env or {}),
    })
    log_path = out_dir / "worker.log"
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voiceops.worker", "--config", str(config_path),
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, process_group=0)
    return WorkerProcess(proc=proc, log_path=log_path, out_dir=out_dir)


async def poll_until(check: Callable[[], Any], timeout_s: float = 20.0,
                     interval_s: float = 0.2) -> Any:
    """Call ``check`` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
