"""Events: round trip, strict decoding, and a sender that never blocks or raises."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from voiceops import events
from voiceops.events import DispatchCreated, EventError, JobRequest


def test_round_trip_keeps_every_field() -> None:
    """encode → decode gives the same event back."""
    ev = JobRequest(job_id="AJ_1", dispatch_id="AD_1", room="r1", agent_name="a", probe=True,
                    decision="probe", process="worker-0", pid=7, ts=1.5)
    assert events.decode(events.encode(ev)) == ev


def test_wire_format_has_version_type_and_base_fields() -> None:
    """The datagram is one JSON object with v, type, ts, process and pid."""
    obj = json.loads(events.encode(DispatchCreated(dispatch_id="AD", room="r", agent_name="a",
                                                   latency_s=0.1, process="proxy", pid=3, ts=2.0)))
    assert obj["v"] == 1 and obj["type"] == "dispatch_created"
    assert (obj["process"], obj["pid"], obj["ts"]) == ("proxy", 3, 2.0)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[1]", b'{"v": 2, "type": "jobs", "active_jobs": 1}',
     b'{"v": 1, "type": "nope"}', b'{"v": 1, "type": "jobs"}',
     b'{"v": 1, "type": "jobs", "active_jobs": "3"}',
     b'{"v": 1, "type": "jobs", "active_jobs": true}',
     b'{"v": 1, "type": "jobs", "active_jobs": 1, "extra": 1}'],
)
def test_malformed_datagrams_are_rejected(data: bytes) -> None:
    """Anything not matching the schema raises EventError (counted as dropped by the receiver)."""
    with pytest.raises(EventError):
        events.decode(data)


def test_emit_without_supervisor_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no socket listening, emit returns False instead of raising or blocking."""
    monkeypatch.setenv(events.EVENTS_ENV, str(tmp_path / "absent.sock"))
    assert events.emit(events.Jobs(active_jobs=1)) is False
    monkeypatch.delenv(events.EVENTS_ENV)
    assert events.emit(events.Jobs(active_jobs=1)) is False


def test_emit_delivers_and_never_blocks_when_full(tmp_path: Path) -> None:
    """Events arrive on the socket; when nobody reads and the buffer fills, emit drops instead of
    blocking."""
    path = str(tmp_path / "ev.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    try:
        sender = events.Emitter(path)
        assert sender.emit(events.Jobs(active_jobs=2, process="worker-1"))
        got = events.decode(rx.recv(65536))
        assert isinstance(got, events.Jobs) and got.active_jobs == 2 and got.process == "worker-1"
        results = [sender.emit(events.Jobs(active_jobs=i)) for i in range(20000)]
        assert not all(results) and sender.lost > 0
        sender.close()
    finally:
        rx.close()


async def test_a_burst_beyond_the_socket_queue_arrives_in_order(tmp_path: Path) -> None:
    """Events that find the supervisor's queue full are retried from the loop, oldest first."""
    import asyncio

    path = str(tmp_path / "ev.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.setblocking(False)
    sender = events.Emitter(path)
    try:
        for i in range(100):  # far beyond net.unix.max_dgram_qlen (10 on these machines)
            sender.emit(events.Jobs(active_jobs=i))
        got: list[int] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(got) < 100 and loop.time() < deadline:
            try:
                got.append(events.decode(rx.recv(65536)).active_jobs)  # type: ignore[attr-defined]
            except BlockingIOError:
                await asyncio.sleep(0.001)  # poll interval while the sender's retries run
        assert got == list(range(100))
        assert sender.lost == 0
    finally:
        sender.close()
        rx.close()


def test_a_full_socket_is_not_retried_on_every_emit(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After EAGAIN, emits only queue until the hold-off ends; then the backlog goes in order."""
    path, rx = _reader(tmp_path)
    now = [100.0]
    monkeypatch.setattr(events.time, "monotonic", lambda: now[0])
    sender = events.Emitter(path)
    try:
        i = 0
        while sender.emit(events.Jobs(active_jobs=i)):  # fill the receiver's queue
            i += 1
        sent = sender.sent
        got = _drain(rx)  # the receiver has room again, but the sender does not ask yet
        for j in range(i + 1, i + 50):
            assert sender.emit(events.Jobs(active_jobs=j)) is False
        assert sender.sent == sent and _drain(rx) == []
        for k in range(50, 70):  # once the hold-off ends, each emit flushes the backlog
            now[0] += events.FULL_HOLD_OFF_S
            sender.emit(events.Jobs(active_jobs=i + k))
            got += _drain(rx)
        assert got == list(range(i + 70)) and sender.lost == 0
    finally:
        sender.close()
        rx.close()


def _drain(rx: socket.socket) -> list[int]:
    out = []
    while True:
        try:
            out.append(events.decode(rx.recv(65536)).active_jobs)  # type: ignore[attr-defined]
        except BlockingIOError:
            return out


def test_a_program_without_a_loop_still_delivers_its_last_events(tmp_path: Path) -> None:
    """No event loop and no later emit: a timer thread retries, so a burst's tail arrives."""
    import time

    path, rx = _reader(tmp_path)
    sender = events.Emitter(path)
    try:
        for i in range(40):  # beyond the receive queue, then silence
            sender.emit(events.Jobs(active_jobs=i))
        got: list[int] = []
        deadline = time.monotonic() + 10
        while len(got) < 40 and time.monotonic() < deadline:
            got += _drain(rx)
            time.sleep(0.005)  # poll interval while the timer thread retries
        assert got == list(range(40)) and sender.lost == 0
    finally:
        sender.close()
        rx.close()


def _reader(tmp_path: Path) -> tuple[str, socket.socket]:
    """A bound, non-blocking unix datagram socket standing in for the supervisor's."""
    path = str(tmp_path / "ev.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.setblocking(False)
    return path, rx
