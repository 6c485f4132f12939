"""Fault injection: a frozen snapshot of the active faults, strict parsing, and a controller."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("voiceops.emulator.faults")

ALL_AGENTS = "*"


class FaultError(ValueError):
    """A fault setting that is unknown or of the wrong type; `key` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Faults:
    """The faults in force. The zero value means "behave like a healthy server"."""

    # agent names whose AvailabilityRequests are silently dropped ("*" = every name)
    swallow_job_requests: frozenset[str] = frozenset()
    # extra wait between a worker's acceptance and the JobAssignment (the worker gives up at 7.5 s)
    assignment_delay_s: float = 0.0
    # /rtc never answers the client's publisher offer
    refuse_media: bool = False
    # every Twirp call fails with this HTTP status
    twirp_error: int | None = None
    twirp_delay_s: float = 0.0

    def swallows(self, agent_name: str) -> bool:
        return ALL_AGENTS in self.swallow_job_requests or agent_name in self.swallow_job_requests

    def to_json(self) -> dict[str, Any]:
        swallow: list[str] | bool = sorted(self.swallow_job_requests)
        if ALL_AGENTS in self.swallow_job_requests:
            swallow = True
        return {
            "swallow_job_requests": swallow,
            "assignment_delay_s": self.assignment_delay_s,
            "refuse_media": self.refuse_media,
            "twirp_error": self.twirp_error,
            "twirp_delay_s": self.twirp_delay_s,
            # An action, not a standing fault: it closes the worker sockets once when set.
            "drop_workers": False,
        }


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise FaultError(key, f"expected true or false, got {type(value).__name__}")
    return value


def _seconds(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultError(key, f"expected a number of seconds, got {type(value).__name__}")
    if not 0 <= value <= 3600:
        raise FaultError(key, f"expected 0..3600 seconds, got {value}")
    return float(value)


def _swallow(key: str, value: object) -> frozenset[str]:
    if isinstance(value, bool):
        return frozenset({ALL_AGENTS}) if value else frozenset()
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise FaultError(key, "expected a list of agent names, or true for every agent")


def _status(key: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise FaultError(key, f"expected an HTTP error status 400..599 or null, got {value!r}")
    return value


_PARSERS: dict[str, Callable[[str, object], object]] = {
    "swallow_job_requests": _swallow,
    "assignment_delay_s": _seconds,
    "refuse_media": _bool,
    "twirp_error": _status,
    "twirp_delay_s": _seconds,
    "drop_workers": _bool,
}


def parse_faults(raw: Mapping[str, object]) -> dict[str, object]:
    """Validated settings from a JSON object; FaultError names the first bad key."""
    if not isinstance(raw, Mapping):
        raise FaultError("<body>", "expected a JSON object")
    parsed: dict[str, object] = {}
    for key, value in raw.items():
        parser = _PARSERS.get(key)
        if parser is None:
            raise FaultError(key, f"unknown fault; known: {', '.join(sorted(_PARSERS))}")
        parsed[key] = parser(key, value)
    return parsed


class FaultController:
    """Holds the current Faults; `drop_workers` is an action, run once through a callback."""

    def __init__(self, drop_workers: Callable[[], None] | None = None) -> None:
        self._current = Faults()
        self._drop_workers = drop_workers

    @property
    def current(self) -> Faults:
        return self._current

    def bind_drop_workers(self, callback: Callable[[], None]) -> None:
        self._drop_workers = callback

    def set(self, **settings: object) -> Faults:
        """Merge the given settings into the active faults (validated like the HTTP route)."""
        parsed = parse_faults(settings)
        drop = bool(parsed.pop("drop_workers", False))
        self._current = dataclasses.replace(self._current, **parsed)  # type: ignore[arg-type]
        logger.warning("faults_set faults=%s", self._current.to_json())
        if drop and self._drop_workers is not None:
            self._drop_workers()
        return self._current

    def clear(self) -> Faults:
        self._current = Faults()
        logger.info("faults_cleared")
        return self._current
