"""Reachability of LiveKit and Letta: error classification and the fire/resolve policy.

A LiveKit call fails in one of three ways an operator fixes differently: nothing answers
(connection refused, timeout: start or reach the server), the server refuses our credentials
(401/403: fix the key or secret), or the server answers with an error (5xx). Pure functions;
the monitor owns the loops that call LiveKit and Letta.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Final

import aiohttp
from livekit import api

from voiceops.config import HeartbeatConfig

FAILURES_TO_FIRE: Final = 2  # one blip is not an outage


class Failure(enum.StrEnum):
    UNREACHABLE = "unreachable"
    CREDENTIALS = "credentials_refused"
    SERVER_ERROR = "server_error"


def classify(exc: BaseException) -> Failure:
    """Which kind of LiveKit failure ``exc`` is (never raises)."""
    if isinstance(exc, api.TwirpError):
        if exc.status in (401, 403) or exc.code in ("unauthenticated", "permission_denied"):
            return Failure.CREDENTIALS
        return Failure.SERVER_ERROR
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure.CREDENTIALS if exc.status in (401, 403) else Failure.SERVER_ERROR
    if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)):
        return Failure.UNREACHABLE
    return Failure.SERVER_ERROR


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a failure for a diagnosis."""
    if isinstance(exc, api.TwirpError):
        return f"HTTP {exc.status} {exc.code}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed ({exc.os_error.strerror or type(exc.os_error).__name__})"
    return type(exc).__name__


@dataclass(frozen=True)
class Reachability:
    """Consecutive failures of one dependency, and whether its alert fires."""

    failures: int = 0
    firing: bool = False
    last_failure: Failure | None = None
    last_error: str = ""


def observe(state: Reachability, error: BaseException | None,
            failures_to_fire: int = FAILURES_TO_FIRE) -> Reachability:
    """The next state after one check (``error`` None means success)."""
    if error is None:
        return Reachability()
    failures = state.failures + 1
    return Reachability(failures=failures, firing=state.firing or failures >= failures_to_fire,
                        last_failure=classify(error), last_error=describe(error))


def check_interval_s(heartbeat: HeartbeatConfig, default_s: float) -> float:
    """How often to check LiveKit: at least once per heartbeat interval, so a hung LiveKit
    (a failed probe confirmed by a failed check) fires within two intervals."""
    return min(default_s, heartbeat.interval_s) if heartbeat.enabled else default_s


def check_timeout_s(heartbeat: HeartbeatConfig, default_s: float) -> float:
    return min(default_s, heartbeat.timeout_s) if heartbeat.enabled else default_s


def livekit_diagnosis(state: Reachability, url: str) -> str:
    """One line telling the operator what to do about LiveKit."""
    if state.last_failure is Failure.CREDENTIALS:
        return (f"LiveKit at {url} refused our credentials ({state.last_error}): check "
                "livekit.api_key and the LIVEKIT_API_SECRET / livekit.api_secret_file secret")
    if state.last_failure is Failure.SERVER_ERROR:
        return (f"LiveKit at {url} answers with errors ({state.last_error}): check the "
                "LiveKit server's health and logs")
    return (f"LiveKit at {url} is unreachable ({state.last_error}): check that the server "
            "runs and livekit.url is right")


def letta_diagnosis(state: Reachability, base_url: str) -> str:
    return (f"Letta at {base_url} is unreachable ({state.last_error}): check that the Letta "
            "server runs, letta.base_url and LETTA_API_KEY")
