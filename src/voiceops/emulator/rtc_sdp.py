"""What the signalling path needs from an SDP, read with a line scan instead of a full parse.

aiortc parses each offer once in ``setRemoteDescription``; a second full parse of an SDK's
14 KB, 7-section offer (three audio and three video receive sections, dozens of codecs) only to
learn its mids and directions cost as much again per join. Pure functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_BUNDLE = re.compile(r"^a=group:BUNDLE[ \t]+([^\r\n]*)", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    """One m= section: its kind, port, direction ("" when it names none; aiortc's parse, used
    before, read that as not sending) and mid."""

    kind: str
    port: int
    direction: str
    mid: str


def sections(sdp: str) -> tuple[Section, ...]:
    """The m= sections, in order."""
    found = []
    for chunk in re.split(r"^m=", sdp, flags=re.MULTILINE)[1:]:
        lines = chunk.splitlines()
        words = lines[0].split()
        direction, mid = "", ""
        for line in lines[1:]:
            attr = line.strip()
            if attr.startswith("a=mid:"):
                mid = attr[len("a=mid:"):].strip()
            elif attr[2:] in _DIRECTIONS and attr.startswith("a="):
                direction = attr[2:]
        found.append(Section(words[0] if words else "", _port(words), direction, mid))
    return tuple(found)


def _port(words: list[str]) -> int:
    try:
        return int(words[1].split("/")[0])
    except (IndexError, ValueError):
        return -1


def client_send_mids(sdp: str) -> set[str]:
    """Mids of the audio/video m-lines on which the client's offer sends media."""
    return {s.mid for s in sections(sdp) if s.kind in ("audio", "video") and s.port != 0
            and s.direction in ("sendonly", "sendrecv")}


def bundled_mids(sdp: str) -> frozenset[str]:
    """Mids carried on another section's transport: the BUNDLE group's members after its tag."""
    found: set[str] = set()
    for group in _BUNDLE.findall(sdp):
        found.update(group.split()[1:])
    return frozenset(found)


def moot_candidate(candidate_init: str, bundled: frozenset[str], mids: tuple[str, ...]) -> bool:
    """A trickled candidate (the client's JSON candidateInit) no transport of ours can use.

    TCP candidates (aioice speaks UDP only, so they never pair) and candidates of an m-line
    bundled onto another (aiortc drops those itself, after parsing each; an SDK trickles ~100
    per join, six of seven sections bundled away). Anything malformed is not moot here: the
    caller's parser reports it."""
    try:
        init = json.loads(candidate_init)
        line = str(init.get("candidate") or "")
        mid, index = init.get("sdpMid"), init.get("sdpMLineIndex")
    except (ValueError, AttributeError):
        return False
    words = line.removeprefix("candidate:").split()
    if len(words) > 2 and words[2].lower() == "tcp":
        return True
    if mid is None and isinstance(index, int) and 0 <= index < len(mids):
        mid = mids[index]
    return isinstance(mid, str) and mid in bundled
