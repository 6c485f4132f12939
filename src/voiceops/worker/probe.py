"""Dispatch metadata: probe markers, and the worker's decision on a JobRequest (pure functions).

A heartbeat probe is a dispatch whose metadata is ``{"voiceops_probe": true, "mode": ...}``:

- ``request``: the worker reports the JobRequest and declines it (no job, no pipeline);
- ``join``: the worker accepts, the job joins the room and leaves at once (no pipeline).
"""

from __future__ import annotations

import json
from enum import Enum, StrEnum
from typing import Any, Final

PROBE_KEY: Final = "voiceops_probe"


class ProbeMode(StrEnum):
    REQUEST = "request"
    JOIN = "join"


class Decision(StrEnum):
    """The ``decision`` of a ``job_request`` event (also the metric label)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PROBE = "probe"


class Answer(Enum):
    ACCEPT = "accept"
    REJECT = "reject"  # the server may offer the job to another worker
    DECLINE = "decline"  # reject with terminate: the job is answered and ends here


def parse_metadata(metadata: str) -> dict[str, Any]:
    """Job metadata as a JSON object; empty, invalid or non-object metadata gives ``{}``."""
    if not metadata:
        return {}
    try:
        obj = json.loads(metadata)
    except (ValueError, TypeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def probe_mode(metadata: str) -> ProbeMode | None:
    """The probe mode of a dispatch, or None for a real one; an unknown mode counts as request."""
    obj = parse_metadata(metadata)
    if obj.get(PROBE_KEY) is not True:
        return None
    return ProbeMode.JOIN if obj.get("mode") == ProbeMode.JOIN.value else ProbeMode.REQUEST


def probe_metadata(mode: ProbeMode | str) -> str:
    """The metadata a heartbeat puts on its probe dispatch."""
    return json.dumps({PROBE_KEY: True, "mode": ProbeMode(mode).value})


def decide(probe: ProbeMode | None, *, draining: bool) -> tuple[Decision, Answer]:
    """What the worker does with a JobRequest, and how the event labels it."""
    if draining:
        return Decision.REJECTED, Answer.REJECT
    if probe is ProbeMode.REQUEST:
        return Decision.PROBE, Answer.DECLINE
    if probe is ProbeMode.JOIN:
        return Decision.PROBE, Answer.ACCEPT
    return Decision.ACCEPTED, Answer.ACCEPT
