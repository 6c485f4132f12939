"""POST /livekit/webhook: LiveKit's signed webhooks; an agent joining a room becomes an
``agent_joined`` event, so time-to-join works even when the agent ran on another host."""

from __future__ import annotations

import logging

from aiohttp import web
from google.protobuf.json_format import ParseError
from livekit import api
from livekit.protocol import models, webhook

from voiceops import events

from .bodies import read_body
from .context import CTX
from .errors import ApiError, bad_request
from .roombook import RoomBook
from .services import SERVICES

logger = logging.getLogger("voiceops.proxy.webhook")
AGENT_IDENTITY_PREFIX = "agent-"  # livekit-agents' default identity: agent-<job id>
JOB_ID_ATTRIBUTES = ("voiceops.job_id", "lk.job_id")
DISPATCH_ID_ATTRIBUTES = ("voiceops.dispatch_id", "lk.dispatch_id")


def make_receiver(api_key: str, api_secret: str) -> api.WebhookReceiver:
    return api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))


async def livekit_webhook(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    auth = request.headers.get("Authorization", "").strip()
    if auth.lower().startswith("bearer "):  # LiveKit sends the bare JWT; tolerate a Bearer prefix
        auth = auth[len("bearer "):].strip()
    if not auth:
        raise _unsigned("missing Authorization header (the webhook signature)")
    raw = await read_body(request)
    try:  # LiveKit sends UTF-8 JSON whatever charset the header claims
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the webhook body is not UTF-8 text") from None
    receiver = make_receiver(ctx.options.livekit_api_key, ctx.secrets.livekit_api_secret)
    try:
        event = receiver.receive(body, auth)
    except ParseError:
        raise bad_request("the webhook body is not a LiveKit WebhookEvent") from None
    except Exception:  # jwt errors, a missing or mismatching sha256: all mean "not signed by us"
        raise _unsigned("webhook signature is invalid") from None
    refused = ctx.replays.refusal(event.id, float(event.created_at))
    if refused is not None:  # a signed event seen before, or too old: its effect was had
        raise ApiError(409 if refused[0] == "replayed_webhook" else 400, *refused)
    _learn(request.app[SERVICES].dispatcher.book, event)
    _report(event)
    return web.json_response({"success": True})


def _learn(book: RoomBook, event: webhook.WebhookEvent) -> None:
    """Keep the room book current: what lets a dispatch skip asking LiveKit."""
    kind = event.event
    if kind == "room_started":
        book.room_started(event.room)
    elif kind == "room_finished":
        book.room_finished(event.room)
    elif kind == "participant_joined":
        book.agent_joined(event.room, event.participant)
    elif kind in ("participant_left", "participant_connection_aborted"):
        book.agent_left(event.room, event.participant)


def _unsigned(message: str) -> ApiError:
    return ApiError(401, "bad_signature", message)


def _report(event: webhook.WebhookEvent) -> None:
    participant = event.participant
    is_agent = participant.kind == models.ParticipantInfo.Kind.AGENT
    if event.event != "participant_joined" or not is_agent:
        return
    job_id, dispatch_id = agent_ids(participant.identity, dict(participant.attributes))
    events.emit(events.AgentJoined(source="webhook", room=event.room.name,
                                   identity=participant.identity, job_id=job_id,
                                   dispatch_id=dispatch_id))
    logger.info("agent_joined job_id=%s dispatch_id=%s", job_id, dispatch_id)


def agent_ids(identity: str, attributes: dict[str, str]) -> tuple[str, str]:
    """(job_id, dispatch_id) from the agent participant, where they can be derived."""
    job_id = next((attributes[k] for k in JOB_ID_ATTRIBUTES if attributes.get(k)), "")
    if not job_id and identity.startswith(AGENT_IDENTITY_PREFIX + "AJ_"):
        job_id = identity[len(AGENT_IDENTITY_PREFIX):]
    dispatch_id = next((attributes[k] for k in DISPATCH_ID_ATTRIBUTES if attributes.get(k)), "")
    return job_id, dispatch_id
