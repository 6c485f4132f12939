"""The deadline poll every test and benchmark waits with: ``wait_for`` (blocking) and
``wait_for_async`` (in a running loop, with a sync or async probe).

Both call ``probe`` until ``done(value)`` holds and return that value; at the deadline they
raise ``error`` (``TimedOut``, an AssertionError, unless the caller names its own) saying what
was awaited. Exceptions listed in ``retry_on`` count as "not yet" and are quoted at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

T = TypeVar("T")


class TimedOut(AssertionError):
    """A deadline poll ran out of time (a test failure, not a crash)."""


class _Deadline:
    """One poll's deadline and the last "not yet" error, shared by both flavours."""

    def __init__(self, timeout_s: float, what: str,
                 retry_on: tuple[type[BaseException], ...], error: type[Exception]) -> None:
        self.timeout_s, self.what, self.retry_on, self.error = timeout_s, what, retry_on, error
        self.at = time.monotonic() + timeout_s
        self.last_error: BaseException | None = None

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """One probe: an error in ``retry_on`` means "not yet" and is remembered."""
        try:
            yield
        except self.retry_on as exc:
            self.last_error = exc

    def check(self) -> None:
        """Raise ``error`` once the deadline has passed."""
        if time.monotonic() >= self.at:
            suffix = f" (last error: {self.last_error})" if self.last_error is not None else ""
            raise self.error(f"timed out after {self.timeout_s:g}s waiting for {self.what}{suffix}")


def wait_for(probe: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition",
             interval_s: float = 0.05, *, retry_on: tuple[type[BaseException], ...] = (),
             error: type[Exception] = TimedOut, done: Callable[[Any], bool] = bool) -> T:
    """Deadline poll: the first value of ``probe()`` for which ``done`` holds (truthy)."""
    deadline = _Deadline(timeout_s, what, retry_on, error)
    while True:
        with deadline.attempt():
            value = probe()
            if done(value):
                return cast(T, value)
        deadline.check()
        time.sleep(interval_s)


async def wait_for_async(probe: Callable[[], T | Awaitable[T | None] | None],
                         timeout_s: float = 30.0, what: str = "condition",
                         interval_s: float = 0.05, *,
                         retry_on: tuple[type[BaseException], ...] = (),
                         error: type[Exception] = TimedOut,
                         done: Callable[[Any], bool] = bool) -> T:
    """Deadline poll in the loop: like ``wait_for``; ``probe`` may return an awaitable."""
    deadline = _Deadline(timeout_s, what, retry_on, error)
    while True:
        with deadline.attempt():
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if done(value):
                return cast(T, value)
        deadline.check()
        await asyncio.sleep(interval_s)
