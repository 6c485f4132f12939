"""Memory figures: a tree's memory is its PSS (shared pages counted once), not summed RSS."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from voiceops.supervisor.resources import sample_tree
from voiceops.testing.harness import assert_gone, wait_for

pytestmark = pytest.mark.process
SHARED_MIB = 96
# A parent touches SHARED_MIB MiB, then forks: both map the same pages (copy-on-write).
FORKING_CHILD = f"""
import os, sys, time
block = bytearray({SHARED_MIB} * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
pid = os.fork()
if pid:
    print(pid, flush=True)
sys.stdin.read()  # both, until the test closes their stdin

"""


def smaps_pss(p: psutil.Process) -> int:
    """PSS summed over /proc/PID/smaps (the kernel's per-mapping view, a second source)."""
    return sum(m.pss for m in p.memory_maps(grouped=True))


def test_tree_memory_is_pss_within_10_percent_and_not_summed_rss() -> None:
    """A parent and its fork sharing 96 MiB: the figure matches their PSS and is far below RSS."""
    proc = subprocess.Popen([sys.executable, "-c", FORKING_CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    fork_pid = 0
    try:
        assert proc.stdout is not None
        fork_pid = int(proc.stdout.readline())
        parent = psutil.Process(proc.pid)
        tree = [parent, psutil.Process(fork_pid)]
        wait_for(lambda: psutil.Process(fork_pid).memory_info().rss > SHARED_MIB * 2**20, 10,
                 "the fork maps the shared block")
        figure = sample_tree(tree).pss_bytes
        pss = sum(smaps_pss(p) for p in tree)
        summed_rss = sum(p.memory_info().rss for p in tree)
        assert abs(figure - pss) <= 0.1 * pss, (figure, pss)
        assert figure < 0.7 * summed_rss, (figure, summed_rss)  # the shared block counted once
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    assert_gone([proc.pid, fork_pid] if fork_pid else [proc.pid])
