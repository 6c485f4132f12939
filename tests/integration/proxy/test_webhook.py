"""POST /livekit/webhook: only LiveKit-signed bodies are accepted; agent joins become events."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

pytestmark = pytest.mark.livekit


def signed(body: str, key: str, secret: str) -> str:
    """What LiveKit sends as Authorization: a JWT carrying base64(sha256(body)), no Bearer."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).to_jwt()


def joined(room: str, identity: str, kind: models.ParticipantInfo.Kind.ValueType,
           attributes: dict[str, str] | None = None, *, event_id: str | None = None,
           created_at: float | None = None) -> str:
    event_id = f"EV_{uuid.uuid4().hex}" if event_id is None else event_id
    ev = webhook.WebhookEvent(event="participant_joined", id=event_id,
                              created_at=int(time.time() if created_at is None else created_at),
                              room=models.Room(name=room, sid="RM_1"),
                              participant=models.ParticipantInfo(identity=identity, kind=kind,
                                                                 attributes=attributes or {}))
    return MessageToJson(ev, indent=None)


async def test_missing_and_bad_signatures_are_401(livekit_server_module, make_proxy):
    """No Authorization, a token signed with another secret, or a body that does not match → 401."""
    lk = livekit_server_module
    proxy = await make_proxy(lk)
    body = joined("wh-room", "agent-AJ_x", models.ParticipantInfo.Kind.AGENT)
    cases = {
        "missing": {},
        "garbage": {"Authorization": "not-a-jwt"},
        "other-secret": {"Authorization": signed(body, lk.api_key, "another-secret-0123456789")},
        "other-body": {"Authorization": signed(body + " ", lk.api_key, lk.api_secret)},
    }
    for name, headers in cases.items():
        ans = await proxy.call("POST", "/livekit/webhook", data=body.encode(),
                               headers={"Content-Type": "application/webhook+json", **headers})
        assert ans.status == 401, (name, ans.text)
        assert ans.error_code == "bad_signature"


async def test_agent_join_webhook_emits_agent_joined(livekit_server_module, make_proxy,
                                                     event_sink):
    """A signed participant_joined for an AGENT → 200 and agent_joined{source=webhook} with ids."""
    lk = livekit_server_module
    proxy = await make_proxy(lk)
    body = joined("wh-room", "agent-AJ_abc123", models.ParticipantInfo.Kind.AGENT,
                  {"lk.agent.name": "letta-voice-agent", "voiceops.dispatch_id": "AD_xyz"})
    ans = await proxy.call("POST", "/livekit/webhook", data=body.encode(),
                           headers={"Authorization": signed(body, lk.api_key, lk.api_secret),
                                    "Content-Type": "application/webhook+json"})
    assert ans.status == 200, ans.text
    event = await event_sink.wait_for("agent_joined")
    assert event["source"] == "webhook" and event["room"] == "wh-room"
    assert event["identity"] == "agent-AJ_abc123"
    assert event["job_id"] == "AJ_abc123" and event["dispatch_id"] == "AD_xyz"


async def test_standard_participant_join_emits_nothing(livekit_server_module, make_proxy,
                                                       event_sink):
    """A signed join of a normal (browser) participant is acknowledged without an agent event."""
    lk = livekit_server_module
    proxy = await make_proxy(lk)
    human = joined("wh-room", "user-1", models.ParticipantInfo.Kind.STANDARD)
    agent = joined("wh-room", "agent-AJ_after", models.ParticipantInfo.Kind.AGENT)
    for body in (human, agent):  # the agent join is the marker that the human one was handled
        ans = await proxy.call("POST", "/livekit/webhook", data=body.encode(),
                               headers={"Authorization": signed(body, lk.api_key, lk.api_secret)})
        assert ans.status == 200
    await event_sink.wait_for("agent_joined", identity="agent-AJ_after")
    assert [e["identity"] for e in event_sink.of_type("agent_joined")] == ["agent-AJ_after"]


async def test_replayed_and_stale_webhooks_are_refused(livekit_server_module, make_proxy,
                                                       event_sink):
    """A signed agent join sent twice counts once (409 the second time); one created outside
    the window (or with no id) is refused (400); neither becomes an agent_joined event."""
    lk = livekit_server_module
    proxy = await make_proxy(lk)

    async def post(body: str):
        return await proxy.call("POST", "/livekit/webhook", data=body.encode(),
                                headers={"Authorization": signed(body, lk.api_key, lk.api_secret)})
    agent = models.ParticipantInfo.Kind.AGENT
    first = joined("wh-replay", "agent-AJ_replayed", agent, event_id="EV_replayed")
    assert (await post(first)).status == 200
    again = await post(first)
    assert again.status == 409 and again.error_code == "replayed_webhook"
    stale = await post(joined("wh-replay", "agent-AJ_stale", agent, created_at=time.time() - 600))
    assert stale.status == 400 and stale.error_code == "stale_webhook"
    future = await post(joined("wh-replay", "agent-AJ_future", agent, created_at=time.time() + 600))
    assert future.status == 400 and future.error_code == "stale_webhook"
    no_id = await post(joined("wh-replay", "agent-AJ_noid", agent, event_id=""))
    assert no_id.status == 400 and no_id.error_code == "stale_webhook"
    marker = joined("wh-replay", "agent-AJ_marker", agent)
    assert (await post(marker)).status == 200
    await event_sink.wait_for("agent_joined", identity="agent-AJ_marker")
    assert [e["identity"] for e in event_sink.of_type("agent_joined")] == [
        "agent-AJ_replayed", "agent-AJ_marker"]
