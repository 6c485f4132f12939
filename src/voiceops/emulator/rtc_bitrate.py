"""Build aiortc's receive-side bitrate estimator on a receiver's first packet, not at negotiation.

aiortc gives every video receiver a ``RemoteBitrateEstimator`` as the remote description is
applied; its rate counter allocates 1,000 one-millisecond buckets up front. A LiveKit client
offers video m-lines it may never send on, so in a join burst that allocation was a third of
answering an offer (~14 % of the emulator's CPU at 20 concurrent joins) and queued the joins
behind each other on the one event loop. The stand-in builds the real estimator on the first
RTP packet and forwards to it, so REMB feedback is unchanged. aiortc's receiver only calls
``add`` (checked: aiortc 1.16); whatever a later version reads is read from the real one.
"""

from __future__ import annotations

from typing import Any

import aiortc.rtcrtpreceiver as _receiver
from aiortc.rate import RemoteBitrateEstimator


class LazyBitrateEstimator:
    """Stands in for ``RemoteBitrateEstimator`` until the first packet needs one: any attribute
    (aiortc's receiver asks only for ``add``) builds the real estimator and is read from it."""

    def __init__(self) -> None:
        self._real: RemoteBitrateEstimator | None = None

    def __getattr__(self, name: str) -> Any:
        if self._real is None:
            self._real = RemoteBitrateEstimator()
        return getattr(self._real, name)


def install() -> None:
    """Make aiortc's receivers build their estimator lazily (idempotent, process-wide)."""
    names = vars(_receiver)
    if names.get("RemoteBitrateEstimator") is RemoteBitrateEstimator:
        names["RemoteBitrateEstimator"] = LazyBitrateEstimator
