"""Child output: line framing with a length cap, a bounded forwarder, the crash tail."""

from __future__ import annotations

import asyncio
import io
import threading

from voiceops.supervisor.logs import ChildOutput, Forwarder, LineSplitter


def test_splitter_keeps_partial_lines_across_reads() -> None:
    """A line split over reads comes out whole; the rest waits for its newline."""
    s = LineSplitter(max_line_bytes=100)
    assert s.feed(b"ab") == []
    assert s.feed(b"c\nde\nf") == [b"abc", b"de"]
    assert s.flush() == [b"f"]
    assert s.flush() == []


def test_splitter_caps_long_lines() -> None:
    """A line longer than the cap is split into cap-sized pieces, none lost."""
    s = LineSplitter(max_line_bytes=4)
    assert s.feed(b"0123456789") == [b"0123", b"4567"]
    assert s.feed(b"\n") == [b"89"]
    assert s.feed(b"abcd\n") == [b"abcd"]


class BlockedOut(io.RawIOBase):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.release.wait(10)
        self.data += b
        return len(b)


def test_forwarder_drops_instead_of_blocking() -> None:
    """With stdout stuck, put() never blocks; overflow is counted."""
    out = BlockedOut()
    fw = Forwarder(out, maxsize=5)  # type: ignore[arg-type]
    for i in range(50):
        fw.put(f"{i}\n".encode())
    assert fw.dropped >= 40
    out.release.set()
    fw.close()
    assert out.data.startswith(b"0\n")


async def test_child_output_tags_and_keeps_a_tail() -> None:
    """Lines are forwarded with the name; the tail keeps the last N, the dump shortens huge ones."""
    out = io.BytesIO()
    fw = Forwarder(out)  # type: ignore[arg-type]
    co = ChildOutput("worker-3", fw, tail_lines=3)
    reader = asyncio.StreamReader()
    reader.feed_data(b"a\nb\nc\nd\n" + b"x" * 10_000 + b"END")
    reader.feed_eof()
    await co.pump(reader, "stderr")
    fw.close()
    assert list(co.tail)[:2] == ["c", "d"]
    assert co.tail[-1].endswith("END")
    assert b"[worker-3 stderr] a\n" in out.getvalue()
    dump = co.dump()
    assert dump.endswith("END") and "chars]" in dump and len(dump) < 3000
