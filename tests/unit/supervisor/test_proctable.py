"""One /proc look per tick: parsing, descendants, and the pid-reuse check."""

from __future__ import annotations

import os
import subprocess
import sys

from voiceops.supervisor.proctable import Entry, ProcTable, parse_stat


def test_parse_stat_survives_odd_command_names() -> None:
    """A name with spaces and parentheses does not shift the fields."""
    line = b"42 (we(ird) n) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"
    assert parse_stat(line) == Entry(ppid=7, pgid=42, zombie=False, start_ticks=12345)
    assert parse_stat(b"43 (x) Z 7 43 43 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0").zombie
    assert parse_stat(b"garbage") is None


def test_descendants_skip_zombies_and_reach_grandchildren() -> None:
    """Children of zombies are still walked; the zombie itself is not reported."""
    table = ProcTable({10: Entry(1, 10, False, 1), 11: Entry(10, 10, True, 2),
                       12: Entry(11, 10, False, 3), 13: Entry(12, 10, False, 4),
                       20: Entry(1, 20, False, 5)})
    assert sorted(table.descendants(10)) == [12, 13]
    assert table.children(1) == [10, 20]


def test_alive_needs_the_same_start_time() -> None:
    """A reused pid (another start time) is not the process we knew."""
    table = ProcTable({10: Entry(1, 10, False, 100)})
    assert table.alive(10, 100) and not table.alive(10, 99) and not table.alive(11, 100)


def test_real_scan_finds_our_child() -> None:
    """The scan of this machine's /proc sees a child of ours with its real parent."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        table = ProcTable.take()
        assert child.pid in table.children(os.getpid())
        assert table.entries[child.pid].ppid == os.getpid()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
