"""Timing helpers shared by the in-process benchmarks (monotonic ns clock, no sleeps)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def no_gc() -> Iterator[None]:
    """Keep the cyclic collector out of a timed region (both legs alike), then restore it."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def best_per_op_ns(legs: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Run every leg ``repeats`` times, interleaved, and keep each leg's best ns per op.

    A leg runs its own loop and returns how many operations it did. Interleaving puts both
    legs under the same background load (other processes share this machine); the minimum
    is the run least disturbed by it, as :mod:`timeit` recommends.
    """
    best = {name: float("inf") for name in legs}
    for _ in range(repeats):
        for name, leg in legs.items():
            with no_gc():
                start = time.perf_counter_ns()
                ops = leg()
                elapsed = time.perf_counter_ns() - start
            best[name] = min(best[name], elapsed / max(ops, 1))
    return best
