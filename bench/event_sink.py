"""``python -m bench.event_sink PATH TOTAL PATTERN``: the supervisor's end of the proxy's event
socket for the dispatch benchmark, in its own process: the client being timed must not also
be the one woken by every event (in production the supervisor reads them, not the caller).

Prints each ``ready`` event as a JSON line (the proxy's address). Exits once TOTAL
``dispatch_created`` events have arrived, or on SIGTERM, printing one last JSON line:
``{"counts": {type: n}, "own_s": [latency_s of events whose room matches PATTERN]}``.
"""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import psutil

from .procs import START_TIMEOUT_S, BenchError, terminate


class SinkProcess:
    """The bench's handle on the sink: what ``ProxyProcess`` needs of an event reader
    (``path``, ``wait_for``), then ``finish()`` for the counts."""

    def __init__(self, path: Path, total: int, pattern: str) -> None:
        self.path = str(path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.event_sink", self.path, str(total), pattern],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.tree = [psutil.Process(self.proc.pid)]
        self.wait_for("bound", START_TIMEOUT_S)

    def wait_for(self, kind: str, timeout_s: float) -> dict[str, object]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            line = self.proc.stdout.readline() if ready else b""
            if ready and not line:
                break  # the sink ended
            if line and json.loads(line).get("type") == kind:
                return dict(json.loads(line))
        raise BenchError(f"no {kind!r} event within {timeout_s:g} s")

    def finish(self, timeout_s: float = 5.0) -> tuple[dict[str, int], list[float]]:
        """Its counts once every event came (or ``timeout_s`` passed), the sink stopped."""
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            terminate(self.proc)
        assert self.proc.stdout is not None
        last = [line for line in self.proc.stdout.read().splitlines() if line.strip()]
        self.proc.stdout.close()
        summary = json.loads(last[-1]) if last else {}
        return dict(summary.get("counts", {})), list(summary.get("own_s", []))

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


def main() -> None:
    path, total, pattern = sys.argv[1], int(sys.argv[2]), re.compile(sys.argv[3])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    sock.settimeout(0.2)  # how soon a SIGTERM is noticed
    counts: dict[str, int] = {}
    own_s: list[float] = []
    print(json.dumps({"type": "bound"}), flush=True)
    while not stopping and counts.get("dispatch_created", 0) < total:
        try:
            event = json.loads(sock.recv(65536))
        except (TimeoutError, InterruptedError):
            continue
        kind = str(event.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "ready":
            print(json.dumps(event), flush=True)
        elif kind == "dispatch_created" and pattern.search(str(event.get("room"))):
            own_s.append(float(event["latency_s"]))
    print(json.dumps({"counts": counts, "own_s": own_s}), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
