"""The jobs each worker holds, and the words for its death."""

from __future__ import annotations

import signal

from voiceops.monitor.calls import CallBook, Held, death_text


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_take_splits_live_and_joining_and_forgets() -> None:
    """A worker's live calls and joining jobs are handed over once; ended and other workers'
    jobs are not; a joining job past the join timeout is the correlator's business."""
    clock = Clock()
    book = CallBook(clock, join_timeout_s=120.0)
    for i, proc in enumerate(("worker-0", "worker-0", "worker-0", "worker-1", "worker-0")):
        book.accepted(proc, f"AJ_{i}", f"AD_{i}", f"r{i}")
    book.joined("AJ_0")
    book.joined("AJ_1")
    book.ended("AJ_1")
    clock.now += 200
    book.accepted("worker-0", "AJ_9", "AD_9", "r9")
    held = book.take("worker-0")
    assert [c.job_id for c in held.live] == ["AJ_0"]
    assert [c.job_id for c in held.joining] == ["AJ_9"]
    assert not book.take("worker-0") and len(book) == 1


def test_death_text_names_the_signal_and_the_counts() -> None:
    """"worker-1 died (SIGKILL) holding 3 calls and 2 joining", and the OOM and exit forms."""
    book = CallBook(Clock(), join_timeout_s=60.0)
    for i in range(5):
        book.accepted("w", f"AJ_{i}", f"AD_{i}", "r")
        if i < 3:
            book.joined(f"AJ_{i}")
    held = book.take("w")
    assert death_text("worker-1", "signal", -signal.SIGKILL, held) == \
        "worker-1 died (SIGKILL) holding 3 calls and 2 joining"
    assert death_text("worker-1", "oom", -signal.SIGKILL, held).startswith(
        "worker-1 died (out of memory, SIGKILL)")
    one = Held(live=held.live[:1], joining=())
    assert (
        death_text("worker-2", "crash", 1, one)
        == "worker-2 exited (code 1) holding 1 call and 0 joining"
    )
