"""A fake supervised child for tests: ``python -m voiceops.testing.fakechild --help``.

It behaves like a livekit-agents worker where the supervisor can tell: it sends ``ready``
and ``jobs`` events, drains on the first SIGTERM (keeps reporting its jobs for a while, then
exits 0) and exits at once with status 1 on a second one. Other flags make it misbehave on
purpose: crash, leak RSS, fork a setsid grandchild, flood its output, write a huge line.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from voiceops import events, lifeline

TICK_S = 0.02


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fakechild", description=__doc__)
    p.add_argument("--ready-after", type=float, default=0.0, metavar="S",
                   help="send the ready event after S seconds (negative: never)")
    p.add_argument("--reregister-after", type=float, default=-1.0, metavar="S",
                   help="send a second ready event with a new worker id after S seconds, as a "
                   "worker does when it re-registers with LiveKit (negative: never)")
    p.add_argument("--exit-after", type=float, default=-1.0, metavar="S",
                   help="exit with --exit-code after S seconds (negative: never)")
    p.add_argument("--exit-code", type=int, default=1)
    p.add_argument("--jobs", type=int, default=0, help="active jobs to report once ready")
    p.add_argument("--drain-s", type=float, default=0.0, metavar="S",
                   help="after the first SIGTERM keep reporting the jobs for S seconds")
    p.add_argument("--signal-log", metavar="FILE", help="append each received signal's name")
    p.add_argument("--pid-file", metavar="FILE",
                   help="append 'PID MONOTONIC_SECONDS' on start (CLOCK_MONOTONIC is system-wide)")
    p.add_argument("--jobs-by-index", metavar="N,N,...",
                   help="active jobs per $VOICEOPS_WORKER_INDEX (overrides --jobs)")
    p.add_argument("--grandchild", metavar="PIDFILE",
                   help="spawn a setsid grandchild that sleeps; write its pid to PIDFILE")
    p.add_argument("--rss-mb", type=int, default=0, help="allocate and touch this many MiB")
    p.add_argument("--long-line-bytes", type=int, default=0,
                   help="write this many bytes without a newline (then --marker)")
    p.add_argument("--marker", default="END-OF-LONG-LINE")
    p.add_argument("--flood-mb", type=int, default=0,
                   help="write this many MiB of lines to stdout as fast as possible")
    p.add_argument("--done-file", metavar="FILE", help="create FILE when the flood is written")
    p.add_argument("--stdout-lines", type=int, default=0, help="print N numbered lines first")
    return p.parse_args(argv)


class Child:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.terms = 0
        self.drain_until: float | None = None
        self.ballast = b""
        self.standby = os.environ.get("VOICEOPS_STANDBY") == "1"
        self.activated = False

    def on_signal(self, signum: int, _frame: object) -> None:
        if self.args.signal_log:
            with open(self.args.signal_log, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {signal.Signals(signum).name}\n")
        if signum == signal.SIGUSR2 and self.standby:  # the supervisor activates a standby
            self.standby = False
            self.activated = True
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.terms += 1
            if self.terms > 1:
                os._exit(1)  # what livekit-agents does on a second signal
            self.drain_until = time.monotonic() + self.args.drain_s

    def side_effects(self) -> None:
        a = self.args
        if a.pid_file:
            with open(a.pid_file, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {time.monotonic():.3f}\n")
        for i in range(a.stdout_lines):
            print(f"line {i}", flush=True)
        if a.grandchild:
            gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                                  start_new_session=True)
            Path(a.grandchild).write_text(f"{gc.pid}\n", encoding="utf-8")
        if a.rss_mb:
            self.ballast = bytes(a.rss_mb * 1024 * 1024)
            self.ballast = bytearray(self.ballast)  # type: ignore[assignment]
            for i in range(0, len(self.ballast), 4096):
                self.ballast[i] = 1  # type: ignore[index]
        if a.long_line_bytes:
            sys.stdout.write("x" * a.long_line_bytes + a.marker)
            sys.stdout.flush()
        if a.flood_mb:
            line = "flood " + "y" * 1017 + "\n"  # 1 KiB
            for _ in range(a.flood_mb * 1024):
                sys.stdout.write(line)
            sys.stdout.flush()
            if a.done_file:
                Path(a.done_file).write_text("done\n", encoding="utf-8")

    def run(self) -> int:
        a = self.args
        start = time.monotonic()
        ready_sent = reregistered = False
        jobs_reported: int | None = None
        while True:
            now = time.monotonic() - start
            if a.exit_after >= 0 and now >= a.exit_after:
                return int(a.exit_code)
            if not ready_sent and 0 <= a.ready_after <= now and self.drain_until is None:
                events.emit(events.Ready(worker_id=f"FAKE_{os.getpid()}", agent_name="fake",
                                         standby=self.standby))
                ready_sent = True
            if ready_sent and 0 <= a.reregister_after <= now and not reregistered:
                events.emit(events.Ready(worker_id=f"FAKE_{os.getpid()}_2", agent_name="fake"))
                reregistered = True
            if self.activated:
                self.activated = False
                events.emit(events.Ready(worker_id=f"FAKE_{os.getpid()}", agent_name="fake"))
            jobs = self._jobs(ready_sent and not self.standby)
            if jobs != jobs_reported:
                events.emit(events.Jobs(active_jobs=jobs))
                jobs_reported = jobs
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                return 0
            time.sleep(TICK_S)

    def _jobs(self, ready: bool) -> int:
        if not ready:
            return 0
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            return 0
        return int(self.args.jobs)


def main(argv: Sequence[str] | None = None) -> int:
    lifeline.die_with_supervisor()
    args = parse(argv)
    if args.jobs_by_index:
        per_index = [int(n) for n in args.jobs_by_index.split(",")]
        index = int(os.environ.get("VOICEOPS_WORKER_INDEX", "0"))
        args.jobs = per_index[index] if index < len(per_index) else 0
    child = Child(args)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, child.on_signal)
    child.side_effects()
    return child.run()


if __name__ == "__main__":
    raise SystemExit(main())
