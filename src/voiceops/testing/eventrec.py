"""The event recorder every test and benchmark listens with: a bound unix datagram socket in
place of the supervisor's event socket, recording each event its children send.

Events are decoded by ``decode`` (JSON dicts by default; ``voiceops.events.decode`` gives the
typed events and raises on anything off-contract). A wait names the event by its type (the wire
``type`` string or an event class) or by a predicate, plus field values, and polls with the
shared deadline poll.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voiceops.testing.waiting import TimedOut, wait_for_async

Match = str | type | Callable[[Any], bool]
POLL_S = 0.02
_MISSING = object()


def _field(event: Any, key: str) -> Any:
    return event.get(key, _MISSING) if isinstance(event, dict) else getattr(event, key, _MISSING)


def event_type(event: Any) -> str:
    """The wire ``type`` of a decoded event (a dict or a typed event)."""
    return str(_field(event, "type") if isinstance(event, dict) else getattr(event, "TYPE", ""))


def matches(event: Any, match: Match, pred: Callable[[Any], bool] | None = None,
            **fields: Any) -> bool:
    """``match`` is a wire type, an event class or a predicate; ``fields`` must be equal."""
    if isinstance(match, str):
        ok = event_type(event) == match
    elif isinstance(match, type):
        ok = isinstance(event, match)
    else:
        ok = bool(match(event))
    return ok and all(_field(event, k) == v for k, v in fields.items()) and \
        (pred is None or bool(pred(event)))


class EventRecorder:
    """Binds ``path`` (or a fresh short path: sun_path holds 108 bytes) and records events."""

    def __init__(self, path: str | Path | None = None, *,
                 decode: Callable[[bytes], Any] = json.loads,
                 on_event: Callable[[Any], None] | None = None, wait_s: float = 30.0) -> None:
        self._dir = None if path is not None else tempfile.mkdtemp(prefix="vo-ev-")
        self.path = str(path) if path is not None else os.path.join(str(self._dir), "events.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self._decode = decode
        self._on_event = on_event
        self.wait_s = wait_s  # a wait's timeout when the caller names none
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received: list[Any] = []
        self.counts: Counter[str] = Counter()

    def drain(self) -> list[Any]:
        """Take every datagram already queued; return everything recorded so far."""
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.received
            event = self._decode(data)
            self.received.append(event)
            self.counts[event_type(event)] += 1
            if self._on_event is not None:
                self._on_event(event)

    def start_reading(self) -> EventRecorder:
        """Record (and hand to ``on_event``) as datagrams arrive, from the running loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self.drain)
        return self

    def of_type(self, match: Match, after: Any = None, *,
                pred: Callable[[Any], bool] | None = None, **fields: Any) -> list[Any]:
        """Recorded events that match (only those after the event ``after``, if given)."""
        self.drain()
        start = 0 if after is None else next(
            i + 1 for i, e in enumerate(self.received) if e is after)
        return [e for e in self.received[start:] if matches(e, match, pred, **fields)]

    def _first(self, match: Match, after: Any, pred: Callable[[Any], bool] | None,
               fields: dict[str, Any]) -> Any:
        found = self.of_type(match, after, pred=pred, **fields)
        return found[0] if found else None

    def _what(self, match: Match, fields: dict[str, Any]) -> str:
        name = match if isinstance(match, str) else getattr(match, "TYPE", None) or \
            getattr(match, "__name__", "event")
        return f"{name} {fields or ''}".strip()

    async def wait_for(self, match: Match, timeout_s: float | None = None, *, after: Any = None,
                       pred: Callable[[Any], bool] | None = None, **fields: Any) -> Any:
        """The first matching event, already recorded or arriving before the deadline."""
        timeout_s = self.wait_s if timeout_s is None else timeout_s
        try:
            return await wait_for_async(lambda: self._first(match, after, pred, fields),
                                        timeout_s, self._what(match, fields), POLL_S,
                                        done=lambda e: e is not None)
        except TimedOut as exc:
            raise TimedOut(f"{exc}; got {self.summary()}") from None

    def summary(self) -> list[tuple[str, str]]:
        """(type, dispatch_id) of each event recorded, for a failure message."""
        ids = (_field(e, "dispatch_id") for e in self.received)
        return [(event_type(e), "" if i is _MISSING else str(i))
                for e, i in zip(self.received, ids, strict=True)]

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
