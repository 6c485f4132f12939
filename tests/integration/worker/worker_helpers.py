"""Helpers for the worker tests: the shared event recorder, and worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from voiceops import events
from voiceops.testing.eventrec import EventRecorder

HERE = Path(__file__).resolve().parent


def event_sink() -> EventRecorder:
    """The shared recorder on a fresh short path, decoding typed events (off-contract raises)."""
    return EventRecorder(decode=events.decode)


def worker_config(path: Path, *, url: str, api_key: str, agent_name: str, entrypoint: str,
                  drain_timeout_s: float = 60.0, stt: str = "pocketsphinx",
                  tts: str = "piper", num_idle_processes: int = 0) -> Path:
    """A worker config; the voice pipeline on the offline providers unless told otherwise."""
    path.write_text(
        f'[livekit]\nurl = "{url}"\napi_key = "{api_key}"\n\n'
        f'[agent]\nname = "{agent_name}"\n\n'
        f'[workers]\nentrypoint = "{entrypoint}"\nnum_idle_processes = {num_idle_processes}\n'
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


async def spawn_worker(config_path: Path, sink: EventRecorder, *, api_secret: str,
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
