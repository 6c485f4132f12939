"""The shared test support every suite waits with: the deadline poll and the event recorder."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from voiceops import events
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.waiting import TimedOut, wait_for, wait_for_async


class Countdown:
    """A probe that answers ``value`` on its ``n``-th call (falsy before)."""

    def __init__(self, n: int, value: object = "done") -> None:
        self.calls, self.n, self.value = 0, n, value

    def __call__(self) -> object:
        self.calls += 1
        return self.value if self.calls >= self.n else None


def test_wait_for_returns_the_first_truthy_value() -> None:
    """The poll keeps asking until the probe answers, and returns that answer."""
    probe = Countdown(3)
    assert wait_for(probe, 5.0, "three calls", 0.001) == "done" and probe.calls == 3


def test_wait_for_fails_naming_what_it_waited_for() -> None:
    """At the deadline a TimedOut (an AssertionError) names the wait and its timeout."""
    with pytest.raises(TimedOut, match=r"timed out after 0.05s waiting for the moon"):
        wait_for(lambda: False, 0.05, "the moon", 0.01)
    assert issubclass(TimedOut, AssertionError)


def test_wait_for_retries_listed_errors_and_quotes_the_last() -> None:
    """Errors in ``retry_on`` mean "not yet"; the caller's error class reports the last one."""
    def refused() -> None:
        raise ConnectionRefusedError("not listening")
    with pytest.raises(RuntimeError, match="last error: not listening"):
        wait_for(refused, 0.05, "a server", 0.01, retry_on=(OSError,), error=RuntimeError)
    with pytest.raises(ZeroDivisionError):  # anything unlisted ends the wait at once
        wait_for(lambda: 1 / 0, 5.0, "never", 0.01, retry_on=(OSError,))


def test_wait_for_done_accepts_falsy_answers() -> None:
    """With ``done`` the caller decides what counts: here an empty list is an answer."""
    assert wait_for(list, 1.0, "a list", 0.01, done=lambda v: v is not None) == []


async def test_wait_for_async_takes_sync_and_async_probes() -> None:
    """In the loop the probe may be plain or a coroutine function; both are polled."""
    sync_probe = Countdown(2, 7)

    async def async_probe() -> object:
        return sync_probe()
    assert await wait_for_async(Countdown(2, 7), 5.0, "sync", 0.001) == 7
    assert await wait_for_async(async_probe, 5.0, "async", 0.001) == 7
    with pytest.raises(TimedOut, match="waiting for nothing"):
        await wait_for_async(lambda: 0, 0.05, "nothing", 0.01)


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    rec = EventRecorder(wait_s=0.2)
    yield rec
    rec.close()


def send(path: str, **event: object) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(json.dumps(event).encode(), path)


async def test_recorder_waits_for_a_type_with_field_values(recorder: EventRecorder) -> None:
    """A wait names the wire type and field values; earlier non-matching events are kept."""
    send(recorder.path, type="ready", process="worker-0")
    send(recorder.path, type="ready", process="proxy", listen="127.0.0.1:1")
    ready = await recorder.wait_for("ready", process="proxy")
    assert ready["listen"] == "127.0.0.1:1"
    assert [e["process"] for e in recorder.of_type("ready")] == ["worker-0", "proxy"]
    assert recorder.counts["ready"] == 2


async def test_recorder_fails_listing_what_it_got(recorder: EventRecorder) -> None:
    """With no match by the deadline the failure lists the events that did arrive."""
    send(recorder.path, type="jobs", dispatch_id="d-1")
    with pytest.raises(TimedOut, match=r"dispatch_failed.*got \[\('jobs', 'd-1'\)\]"):
        await recorder.wait_for("dispatch_failed")


async def test_recorder_decodes_typed_events_and_waits_after_one() -> None:
    """With ``events.decode`` a wait names an event class; ``after`` skips what came before."""
    rec = EventRecorder(decode=events.decode)
    try:
        for n in (1, 0, 1):
            send(rec.path, v=1, type="jobs", ts=1.0, process="w", pid=1, active_jobs=n)
        busy = await rec.wait_for(events.Jobs, 1.0, active_jobs=1)
        idle = await rec.wait_for(events.Jobs, 1.0, after=busy, active_jobs=0)
        again = await rec.wait_for(events.Jobs, 1.0, after=idle, active_jobs=1)
        assert [busy, idle, again] == rec.received and again is rec.received[2]  # not the first
    finally:
        rec.close()


async def test_recorder_hands_each_event_on_as_it_arrives() -> None:
    """Reading from the loop, every event reaches ``on_event`` without anyone polling."""
    seen: list[object] = []
    rec = EventRecorder(on_event=seen.append).start_reading()
    try:
        send(rec.path, type="ready")
        await wait_for_async(lambda: seen, 1.0, "the event handed on", 0.001)
        assert seen == [{"type": "ready"}]
    finally:
        rec.close()
