"""One participant's data channels: packets it sends go to the room core, relayed ones go out.

As in the Go server with a publisher-primary (v0) or single (v1) peer connection: the client
opens `_reliable` and `_lossy` on the PC the server answers, and the server sends downstream
data on those same channels (`TransportManager.SendDataMessage` uses the primary PC). Reliable
packets for a participant whose channel is not open yet wait (bounded, like Go's joining
buffer); lossy ones are dropped. Everything runs in the data channel's callbacks, without
awaiting, so packets keep their order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from livekit.protocol import models

from voiceops.emulator.data_relay import KIND_BY_LABEL, LOSSY_LABEL, RELIABLE_LABEL

log = logging.getLogger(__name__)

OnPacket = Callable[[int, bytes], None]  # (DataPacket kind, raw packet)
MAX_PENDING_RELIABLE_BYTES = 1 << 20  # Go: cMaxJoiningUnsequencedReliableBytes-like bound


class SessionData:
    """The `_reliable` / `_lossy` channels of one session's answering peer connection."""

    def __init__(self, name: str, on_packet: OnPacket) -> None:
        self._name = name
        self._on_packet = on_packet
        self._channels: dict[str, Any] = {}
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self.dropped = 0

    def on_channel(self, channel: Any) -> None:
        """aiortc's `datachannel` event: a channel the client opened."""
        label = channel.label
        kind = KIND_BY_LABEL.get(label)
        if kind is None:
            log.debug("rtc_data_channel_ignored session=%s label=%r", self._name, label)
            return
        self._channels[label] = channel
        channel.on("message", lambda message: self._received(kind, message))
        if label == RELIABLE_LABEL:
            self._flush()

    def _received(self, kind: int, message: bytes | str) -> None:
        if isinstance(message, str):
            message = message.encode()
        try:
            self._on_packet(kind, message)
        except Exception:  # raised into aiortc's SCTP loop, it would end the whole transport
            log.exception("rtc_data_relay_failed session=%s", self._name)

    def send(self, kind: int, raw: bytes) -> None:
        """Send a relayed packet; reliable ones wait for the channel, lossy ones do not."""
        label = RELIABLE_LABEL if kind == models.DataPacket.RELIABLE else LOSSY_LABEL
        channel = self._channels.get(label)
        if channel is not None and channel.readyState == "open":
            channel.send(raw)
            return
        if label == LOSSY_LABEL or self._pending_bytes + len(raw) > MAX_PENDING_RELIABLE_BYTES:
            self.dropped += 1
            return
        self._pending.append(raw)
        self._pending_bytes += len(raw)

    def _flush(self) -> None:
        channel = self._channels[RELIABLE_LABEL]
        while self._pending and channel.readyState == "open":
            raw = self._pending.popleft()
            self._pending_bytes -= len(raw)
            channel.send(raw)
