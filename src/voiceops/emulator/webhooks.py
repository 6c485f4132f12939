"""Signed LiveKit webhooks, delivered from a background queue per URL (never blocking callers)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import logging
import time
from collections.abc import Callable

import aiohttp
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

from .tokens import new_id

logger = logging.getLogger("voiceops.emulator.webhooks")
WEBHOOK_TOKEN_TTL = datetime.timedelta(minutes=5)


def sign_body(body: str, api_key: str, api_secret: str) -> str:
    """The Authorization value Go's URLNotifier sends: a JWT carrying base64(sha256(body))."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return (
        api.AccessToken(api_key, api_secret)
        .with_sha256(digest)
        .with_ttl(WEBHOOK_TOKEN_TTL)
        .to_jwt()
    )


def encode_event(event: webhook.WebhookEvent) -> str:
    """protojson like Go: lowerCamel names, defaults omitted, int64 as strings, compact."""
    return MessageToJson(event, indent=None)


class _UrlQueue:
    """One URL's ordered delivery queue; drops (and counts) events when it is full."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.queue: asyncio.Queue[webhook.WebhookEvent] = asyncio.Queue(maxsize=size)
        self.dropped = 0


class WebhookNotifier:
    def __init__(
        self,
        urls: tuple[str, ...],
        api_key: str,
        api_secret: str,
        *,
        attempts: int,
        timeout_s: float,
        backoff_s: float,
        queue_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queues = [_UrlQueue(url, queue_size) for url in urls]
        self._key = api_key
        self._secret = api_secret
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered = 0
        self.failed = 0

    async def start(self) -> None:
        if not self._queues:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        for q in self._queues:
            self._tasks.append(asyncio.create_task(self._deliver_loop(q), name=f"webhook:{q.url}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def emit(
        self,
        event: str,
        room: models.Room,
        participant: models.ParticipantInfo | None = None,
        track: models.TrackInfo | None = None,
    ) -> None:
        """Queue one event for every URL; returns at once."""
        for q in self._queues:
            ev = webhook.WebhookEvent(
                event=event, room=room, id=new_id("EV_"), created_at=int(self._clock())
            )
            if participant is not None:
                ev.participant.CopyFrom(participant)
            if track is not None:  # track_published / track_unpublished
                ev.track.CopyFrom(track)
            ev.num_dropped = q.dropped
            try:
                q.queue.put_nowait(ev)
            except asyncio.QueueFull:
                q.dropped += 1
                logger.warning("webhook_dropped event=%s url=%s reason=queue_full", event, q.url)

    async def _deliver_loop(self, q: _UrlQueue) -> None:
        while True:
            ev = await q.queue.get()
            await self._deliver(q.url, ev)

    async def _deliver(self, url: str, ev: webhook.WebhookEvent) -> None:
        assert self._session is not None
        body = encode_event(ev)
        headers = {
            "Authorization": sign_body(body, self._key, self._secret),
            "Content-Type": "application/webhook+json",
            "User-Agent": "LiveKit",
        }
        for attempt in range(self._attempts):
            try:
                async with self._session.post(url, data=body.encode(), headers=headers) as resp:
                    if resp.status < 400:
                        self.delivered += 1
                        return
                    reason = f"status {resp.status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "webhook_failed event=%s url=%s reason=%r attempt=%d", ev.event, url, reason,
                attempt + 1
            )
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff_s * (2**attempt))
        self.failed += 1
