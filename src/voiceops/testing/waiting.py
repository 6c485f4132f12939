"""The deadline poll every test and benchmark waits with: ``wait_for`` (blocking) and
``wait_for_async`` (in a running loop, with a sync or async probe).

Both call ``probe`` until ``done(value)`` holds and return that value; at the deadline they
raise ``error`` (``TimedOut``, an AssertionError, unless the caller names its own) saying what
was awaited. Exceptions listed in ``retry_on`` count as "not yet" and are quoted at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class TimedOut(AssertionError):
    """A deadline poll ran out of time (a test failure, not a crash)."""


def _message(timeout_s: float, what: str, last_error: BaseException | None) -> str:
    suffix = f" (last error: {last_error})" if last_error is not None else ""
    return f"timed out after {timeout_s:g}s waiting for {what}{suffix}"


def wait_for(probe: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition",
             interval_s: float = 0.05, *, retry_on: tuple[type[BaseException], ...] = (),
             error: type[Exception] = TimedOut, done: Callable[[Any], bool] = bool) -> T:
    """Deadline poll: the first value of ``probe()`` for which ``done`` holds (truthy)."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if done(value):
                return cast(T, value)
        except retry_on as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise error(_message(timeout_s, what, last_error))
        time.sleep(interval_s)


async def wait_for_async(probe: Callable[[], T | None | Awaitable[T | None]],
                         timeout_s: float = 30.0, what: str = "condition",
                         interval_s: float = 0.05, *,
                         retry_on: tuple[type[BaseException], ...] = (),
                         error: type[Exception] = TimedOut,
                         done: Callable[[Any], bool] = bool) -> T:
    """Deadline poll in the loop: like ``wait_for``; ``probe`` may return an awaitable."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if done(value):
                return cast(T, value)
        except retry_on as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise error(_message(timeout_s, what, last_error))
        await asyncio.sleep(interval_s)
