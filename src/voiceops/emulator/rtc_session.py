"""One `/rtc` or `/rtc/v1` signalling socket: join, offers/answers, trickle, ping, tracks, leave.

Every outgoing message goes through one queue and one writer task, so the room core can push
updates from any task without racing our own replies, and `JoinResponse` is always first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError
from livekit.api.access_token import Claims
from livekit.protocol import models
from livekit.protocol import rtc as proto

from voiceops.emulator import rtc_messages as msgs
from voiceops.emulator.rtc_contract import RtcHub
from voiceops.emulator.rtc_data import SessionData
from voiceops.emulator.rtc_join import JoinSettings
from voiceops.emulator.rtc_messages import RtcOptions
from voiceops.emulator.rtc_peer import CandidateError, PeerEndpoint
from voiceops.emulator.rtc_tracks import SessionTracks

log = logging.getLogger(__name__)
# Sessions are logged by a process-local number: room names and identities are callers' data.
_SESSION_NUMBERS = itertools.count(1)

_END_TYPES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
_IGNORED_REQUESTS = frozenset(
    {"track_setting", "update_layers", "subscription_permission", "sync_state", "simulate",
     "update_audio_track", "update_video_track", "update_data_subscription"}
)  # tolerated: no simulcast layers, permissions or data tracks in the emulator


class _Close:
    """Writer-queue sentinel: optionally send `leave`, then close the socket."""

    def __init__(self, leave_reason: str | None) -> None:
        self.leave_reason = leave_reason


class _Sink:
    """The `ParticipantSink` handed to the room core for this socket."""

    def __init__(self, session: SignalSession) -> None:
        self._session = session

    async def send(self, msg: proto.SignalResponse) -> None:
        self._session.enqueue(msg)

    async def close(self, reason: str) -> None:
        self._session.request_close(reason, removed_by_hub=True)

    def subscribe(self, publisher_sid: str, track: models.TrackInfo, media: Any) -> None:
        if not self._session.closing:
            self._session.tracks.subscribe(publisher_sid, track, media)
        else:
            media.end()

    def unsubscribe(self, track_sid: str) -> None:
        self._session.tracks.unsubscribe(track_sid)

    def send_data(self, kind: int, raw: bytes) -> None:
        if not self._session.closing:
            self._session.data.send(kind, raw)


def _now_ms() -> int:
    return int(time.time() * 1000)


class SignalSession:
    """Serves one participant's signalling socket from join to cleanup."""

    def __init__(
        self, ws: web.WebSocketResponse, hub: RtcHub, claims: Claims, options: RtcOptions,
        settings: JoinSettings | None = None,
    ) -> None:
        self._ws = ws
        self._hub = hub
        self._claims = claims
        self._options = options
        self._settings = settings or JoinSettings()
        self.room = claims.video.room if claims.video else ""
        self.identity = claims.identity
        self.tag = name = f"s{next(_SESSION_NUMBERS)}"
        self.data = SessionData(name, self._on_data)
        self.publisher = PeerEndpoint(
            f"{name}/pub", options.max_buffered_candidates, on_track=self._on_media,
            on_datachannel=self.data.on_channel,
        )
        # v1 (single PC): subscribed tracks ride on the publisher PC too.
        self.subscriber = None if self._settings.single_pc else PeerEndpoint(
            f"{name}/sub", options.max_buffered_candidates
        )
        self.tracks = SessionTracks(
            hub, self.room, self.identity, self.enqueue, self.publisher, self.subscriber
        )
        self._queue: asyncio.Queue[proto.SignalResponse | _Close] = asyncio.Queue()
        self._pre_join: list[proto.SignalResponse] = []
        self._joined = False
        self._closing = False
        self._removed_by_hub = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()

    def __repr__(self) -> str:
        return f"<SignalSession {self.room}/{self.identity}>"

    @property
    def closing(self) -> bool:
        return self._closing

    def _on_media(self, track: Any, mid: str) -> None:
        self.tracks.on_media(track, mid)

    def _on_data(self, kind: int, raw: bytes) -> None:
        if self._joined and not self._closing:
            self._hub.relay_data(self.room, self.identity, kind, raw)

    # -- called by the room core (through _Sink) and by app shutdown --------------------------

    def enqueue(self, msg: proto.SignalResponse) -> None:
        """Queue a message; before the JoinResponse it waits, after close it is dropped."""
        if self._closing:
            return
        if not self._joined:
            self._pre_join.append(msg)
        else:
            self._queue.put_nowait(msg)

    def request_close(self, reason: str, *, removed_by_hub: bool) -> None:
        """Send `leave` and close; `removed_by_hub` means the core already dropped us."""
        # Recorded even while we are already closing: a replacement with the same identity may
        # have joined, and our leave() would then remove it instead of us.
        self._removed_by_hub = self._removed_by_hub or removed_by_hub
        if self._closing:
            return
        log.info("rtc_session_closed session=%s reason=%s", self.tag, reason)
        self._closing = True
        self._queue.put_nowait(_Close(reason))

    async def shutdown(self, reason: str) -> None:
        """Close from the server side and wait (bounded) until cleanup has run."""
        self.request_close(reason, removed_by_hub=False)
        try:
            await asyncio.wait_for(self._finished.wait(), self._options.close_timeout_s * 2)
        except TimeoutError:
            log.warning("rtc_cleanup_unfinished session=%s", self.tag)

    # -- the socket's life ----------------------------------------------------------------------

    async def run(self) -> None:
        """Join, serve requests until the socket ends, then clean up everything we own."""
        try:
            if not await self._join():
                return
            self._spawn(self._write_loop(), "writer")
            self._spawn(self._activate_when_connected(), "activate")
            await self._read_loop()
        finally:
            await self._cleanup()
            self._finished.set()

    async def _join(self) -> bool:
        # No timeout here: a join abandoned halfway would leave the core's state unknown; a
        # late answer is harmless (the client has gone, and cleanup calls leave()).
        try:
            info = await self._hub.join(
                self._claims, _Sink(self), auto_subscribe=self._settings.auto_subscribe
            )
        except (PermissionError, ValueError) as exc:
            log.warning("rtc_join_refused session=%s error=%s", self.tag, exc)
            await self._ws.close(code=1008, message=b"join refused")
            return False
        first = msgs.join_response(info.room, info.participant, info.others, self._options)
        self._queue.put_nowait(first)
        for msg in self._pre_join:
            self._queue.put_nowait(msg)
        self._pre_join.clear()
        self._joined = True
        log.info("rtc_joined session=%s signalling=%s", self.tag,
                 "v1_single_pc" if self._settings.single_pc else "v0_two_pcs")
        # v1: the join request carried the client's AddTrackRequests and first publisher offer.
        for add in self._settings.add_tracks:
            self._on_add_track(add)
        if self._settings.publisher_offer is not None:
            await self._on_offer(self._settings.publisher_offer)
        return True

    async def _read_loop(self) -> None:
        while True:
            try:
                msg = await self._ws.receive(timeout=self._options.ping_timeout_s)
            except TimeoutError:
                log.warning("rtc_client_silent session=%s timeout_s=%s", self.tag,
                            self._options.ping_timeout_s)
                return
            if msg.type in _END_TYPES:
                return
            if msg.type != WSMsgType.BINARY:
                log.warning("rtc_frame_ignored session=%s kind=text", self.tag)
                continue
            try:
                req = proto.SignalRequest.FromString(msg.data)
            except DecodeError as exc:
                log.warning("rtc_request_undecodable session=%s error=%s", self.tag, exc)
                continue
            if not await self._handle(req):
                return

    async def _handle(self, req: proto.SignalRequest) -> bool:
        """Serve one request; False ends the session (the client left)."""
        kind = req.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(req.offer)
        elif kind == "trickle":
            await self._on_trickle(req.trickle)
        elif kind == "ping_req":
            self.enqueue(msgs.pong(req.ping_req, _now_ms()))
        elif kind == "ping":
            self.enqueue(msgs.legacy_pong(_now_ms()))
        elif kind == "add_track":
            self._on_add_track(req.add_track)
        elif kind == "answer":
            await self.tracks.on_subscriber_answer(req.answer)
        elif kind == "mute":
            await self.tracks.mute(req.mute)
        elif kind == "subscription":
            await self._hub.update_subscription(
                self.room, self.identity, list(req.subscription.track_sids),
                req.subscription.subscribe)
        elif kind == "update_metadata":
            self.enqueue(
                await self._hub.update_metadata(self.room, self.identity, req.update_metadata)
            )
        elif kind == "leave":
            log.info("rtc_client_left session=%s", self.tag)
            return False
        elif kind not in _IGNORED_REQUESTS:
            log.debug("rtc_request_unhandled session=%s kind=%s", self.tag, kind)
        return True

    async def _on_offer(self, offer: proto.SessionDescription) -> None:
        if self._hub.refuse_media():
            log.info("fault_refuse_media session=%s", self.tag)
            return
        try:
            sdp = await self.publisher.answer(offer.sdp)
        except (ValueError, CandidateError) as exc:  # aiortc raises ValueError on bad SDP
            log.warning("rtc_offer_failed session=%s error=%s", self.tag, exc)
            return
        self.enqueue(self.tracks.answer_message(sdp, offer.id))
        await self.tracks.after_offer(offer.sdp)

    async def _on_trickle(self, trickle: proto.TrickleRequest) -> None:
        endpoint = self.publisher
        if trickle.target == proto.SignalTarget.SUBSCRIBER and self.subscriber is not None:
            endpoint = self.subscriber
        try:
            await endpoint.add_candidate(trickle.candidateInit)
        except (CandidateError, ValueError) as exc:
            log.warning("rtc_trickle_bad session=%s error=%s", self.tag, exc)

    def _on_add_track(self, req: proto.AddTrackRequest) -> None:
        if self._claims.video is not None and not self._claims.video.can_publish:
            log.warning("rtc_add_track_refused session=%s reason=no_can_publish", self.tag)
            return
        self.enqueue(msgs.track_published(req.cid, self.tracks.add_track(req)))

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, _Close):
                await self._close_socket(item.leave_reason)
                return
            try:
                await self._ws.send_bytes(item.SerializeToString())
            except ConnectionError:
                return  # the reader sees the close and runs cleanup

    async def _close_socket(self, leave_reason: str | None) -> None:
        try:
            if leave_reason is not None and not self._ws.closed:
                await self._ws.send_bytes(msgs.leave(leave_reason).SerializeToString())
            await asyncio.wait_for(self._ws.close(), self._options.close_timeout_s)
        except (ConnectionError, TimeoutError) as exc:
            log.debug("rtc_close_error session=%s error=%r", self.tag, exc)

    async def _activate_when_connected(self) -> None:
        await self.publisher.connected.wait()
        log.info("rtc_connected session=%s", self.tag)
        try:
            await self._hub.set_active(self.room, self.identity)
        except Exception:  # a core bug must not kill the socket; CancelledError still propagates
            log.exception("rtc_set_active_failed session=%s", self.tag)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"rtc-{name}-{self.identity}")
        self._tasks.add(task)

    async def _cleanup(self) -> None:
        """Stop our tasks, tell the core we left (unless it removed us), close the PC and socket.

        leave() comes before the close handshake, which may wait on a client that stopped reading.
        """
        self._closing = True
        writer = next((t for t in self._tasks if t.get_name().startswith("rtc-writer")), None)
        others = [t for t in self._tasks if t is not writer]
        for task in others:
            task.cancel()
        await self._gather(others)
        try:
            if self._joined and not self._removed_by_hub:
                await self._hub.leave(self.room, self.identity)
        finally:
            await self.tracks.close()
            await self.publisher.close()
            if self.subscriber is not None:
                await self.subscriber.close()
            await self._finish_writer(writer)
            self._tasks.clear()

    async def _finish_writer(self, writer: asyncio.Task[None] | None) -> None:
        """Let the writer flush and close the socket (bounded), then make sure it is closed."""
        self._queue.put_nowait(_Close(None))
        if writer is not None:
            await asyncio.wait({writer}, timeout=self._options.close_timeout_s * 2)
            writer.cancel()
            await self._gather([writer])
        if not self._ws.closed:
            with contextlib.suppress(ConnectionError, TimeoutError):  # the transport is gone
                await asyncio.wait_for(self._ws.close(), self._options.close_timeout_s)

    async def _gather(self, tasks: list[asyncio.Task[None]]) -> None:
        """Await finished or cancelled tasks; log their failures, re-raise our own cancellation."""
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("rtc_task_failed session=%s error=%r", self.tag, result)
