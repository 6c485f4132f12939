"""Children's output: read continuously, split into lines, forward tagged, keep a tail.

A child must never block on a full pipe, so each stream is read in chunks as fast as it
arrives, whatever happens downstream. Lines longer than :data:`MAX_LINE_BYTES` are split.
Forwarding goes through a bounded queue drained by one writer thread: when our own stdout
is slow (a stalled journald, a terminal paused with Ctrl-S), lines are dropped and counted
instead of stalling the event loop or the child.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections import deque
from typing import BinaryIO, Final

MAX_LINE_BYTES: Final = 64 * 1024
TAIL_LINES: Final = 200
READ_CHUNK_BYTES: Final = 64 * 1024
FORWARD_QUEUE_LINES: Final = 10_000
DUMP_LINE_CHARS: Final = 2048  # a crash dump shows the head and end of each kept line

log = logging.getLogger("voiceops.supervisor.logs")


class LineSplitter:
    """Bytes in, complete lines out; keeps a partial line across reads, caps line length."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        while True:
            nl = self._buf.find(b"\n", 0, self._max + 1)
            if nl >= 0:
                lines.append(bytes(self._buf[:nl]))
                del self._buf[:nl + 1]
            elif len(self._buf) >= self._max:
                lines.append(bytes(self._buf[:self._max]))
                del self._buf[:self._max]
            else:
                return lines

    def flush(self) -> list[bytes]:
        """The partial line at EOF, if any."""
        rest, self._buf = bytes(self._buf), bytearray()
        return [rest] if rest else []


class Forwarder:
    """Writes tagged lines to our stdout from a thread; drops (and counts) when it lags."""

    def __init__(self, out: BinaryIO | None = None, maxsize: int = FORWARD_QUEUE_LINES) -> None:
        self._out = out if out is not None else sys.stdout.buffer
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._run, name="voiceops-log-writer", daemon=True)
        self.dropped = 0
        self._thread.start()

    def put(self, line: bytes) -> None:
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._out.write(item)
                if self._queue.empty():
                    self._out.flush()
            except (OSError, ValueError):
                self.dropped += 1  # stdout closed: keep draining so put() never blocks

    def close(self, timeout_s: float = 2.0) -> None:
        """Flush what we can within ``timeout_s``; a stuck stdout must not hang shutdown."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)


class ChildOutput:
    """One child's two streams: a tail of the last lines, forwarded with the child's name."""

    def __init__(self, name: str, forwarder: Forwarder, tail_lines: int = TAIL_LINES) -> None:
        self.name = name
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self._forwarder = forwarder

    def _emit(self, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        self.tail.append(text)
        tag = self.name if stream == "stdout" else f"{self.name} stderr"
        self._forwarder.put(f"[{tag}] {text}\n".encode())

    async def pump(self, reader: asyncio.StreamReader, stream: str) -> None:
        """Read until EOF, never letting the pipe fill."""
        splitter = LineSplitter()
        while data := await reader.read(READ_CHUNK_BYTES):
            for line in splitter.feed(data):
                self._emit(stream, line)
        for line in splitter.flush():
            self._emit(stream, line)

    def dump(self) -> str:
        """The kept tail for a crash report; very long lines keep their head and their end."""
        half = DUMP_LINE_CHARS // 2
        return "\n".join(line if len(line) <= DUMP_LINE_CHARS else
                         f"{line[:half]} …[{len(line) - DUMP_LINE_CHARS} chars]… {line[-half:]}"
                         for line in self.tail)
