"""Pure policies of the emulator: load-weighted worker choice, room closing, fault parsing."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from livekit.protocol import agent

from voiceops.emulator.faults import FaultController, FaultError, parse_faults
from voiceops.emulator.state import Room, room_should_close
from voiceops.emulator.workers import Worker, choose_worker


def _worker(wid: str, load: float, status: int = agent.WS_AVAILABLE) -> Worker:
    return Worker(
        id=wid,
        key=("a", "", agent.JT_ROOM),
        version="t",
        permissions=None,  # type: ignore[arg-type]
        ws=None,
        status=status,
        load=load,
    )  # type: ignore[arg-type]


def test_choice_is_weighted_by_free_capacity() -> None:
    """A worker at load 0.8 is picked about 4x less often than one at 0.2; FULL ones never."""
    rng = random.Random(7)
    pool = [_worker("light", 0.2), _worker("heavy", 0.8), _worker("full", 0.0, agent.WS_FULL)]
    counts = Counter(choose_worker(pool, rng).id for _ in range(5000))  # type: ignore[union-attr]
    assert counts["full"] == 0
    assert 3.2 < counts["light"] / counts["heavy"] < 4.8


def test_no_choice_without_capacity() -> None:
    """No worker is chosen when none is AVAILABLE with load below 1."""
    rng = random.Random(1)
    assert choose_worker([], rng) is None
    assert choose_worker([_worker("x", 1.0), _worker("y", 0.1, agent.WS_FULL)], rng) is None


def _room(**kw: Any) -> Room:
    return Room(
        sid="RM_x", name="r", created_at_s=100.0, empty_timeout_s=300, departure_timeout_s=20, **kw
    )


def test_room_close_policy() -> None:
    """Never-joined rooms use empty_timeout; joined-and-left rooms use departure_timeout."""
    assert not room_should_close(_room(), 399.0)
    assert room_should_close(_room(), 400.0)
    left = _room(first_joined_at_s=110.0, last_left_at_s=150.0)
    assert not room_should_close(left, 169.0)
    assert room_should_close(left, 170.0)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"twirp_delay_s": -1}, "twirp_delay_s"),
        ({"swallow_job_requests": [1]}, "swallow_job_requests"),
        ({"drop_workers": "yes"}, "drop_workers"),
        ({"twirp_error": True}, "twirp_error"),
    ],
)
def test_fault_parsing_names_the_bad_key(raw: dict[str, Any], key: str) -> None:
    """Every invalid fault setting raises FaultError naming its key."""
    with pytest.raises(FaultError) as err:
        parse_faults(raw)
    assert err.value.key == key


def test_fault_controller_merges_and_drops_once() -> None:
    """set() merges settings, drop_workers fires its callback once and is not remembered."""
    drops: list[int] = []
    ctl = FaultController(lambda: drops.append(1))
    ctl.set(swallow_job_requests=["voice"])
    ctl.set(twirp_error=503, drop_workers=True)
    assert ctl.current.swallows("voice") and not ctl.current.swallows("other")
    assert ctl.current.twirp_error == 503 and drops == [1]
    assert ctl.clear().to_json()["swallow_job_requests"] == []
    assert FaultController().set(swallow_job_requests=True).swallows("anything")
