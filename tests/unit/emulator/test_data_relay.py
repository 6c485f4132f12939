"""The Go server's data-relay rules (data_relay), on protobufs, without a network."""

from __future__ import annotations

from livekit.protocol import models
from livekit.protocol import rtc as proto

from voiceops.emulator import data_relay as relay
from voiceops.emulator.hub import apply_metadata_update
from voiceops.emulator.state import Participant

ALICE = relay.Sender(sid="PA_alice", identity="alice")
AGENT = relay.Sender(sid="PA_agent", identity="agent-AJ_1", is_agent=True)
RELIABLE, LOSSY = models.DataPacket.RELIABLE, models.DataPacket.LOSSY


def _user(**fields) -> models.DataPacket:
    return models.DataPacket(user=models.UserPacket(payload=b"x"), **fields)


def test_a_forged_sender_identity_is_replaced_and_the_kind_follows_the_channel() -> None:
    """The server stamps the sender's identity and sid, whatever the packet claims."""
    dp = relay.prepare(_user(participant_identity="mallory", kind=LOSSY), RELIABLE, ALICE)
    assert dp is not None
    assert (dp.participant_identity, dp.participant_sid, dp.kind) == ("alice", "PA_alice", RELIABLE)
    assert (dp.user.participant_identity, dp.user.participant_sid) == ("alice", "PA_alice")


def test_a_hidden_sender_stays_anonymous() -> None:
    """Hidden participants' packets carry no identity."""
    hidden = relay.Sender(sid="PA_h", identity="recorder", hidden=True)
    dp = relay.prepare(_user(), RELIABLE, hidden)
    assert dp is not None and dp.participant_identity == "" and dp.user.participant_identity == ""


def test_transcriptions_only_from_agents_and_metrics_never() -> None:
    """A non-agent's transcription and anyone's metrics are not relayed."""
    transcription = models.DataPacket(transcription=models.Transcription(track_id="TR_1"))
    assert relay.prepare(models.DataPacket.FromString(transcription.SerializeToString()),
                         RELIABLE, ALICE) is None
    assert relay.prepare(transcription, RELIABLE, AGENT) is not None
    metrics = models.DataPacket()
    metrics.metrics.timestamp_ms = 1
    assert relay.prepare(metrics, RELIABLE, AGENT) is None



def test_an_unknown_packet_kind_is_relayed_with_its_content() -> None:
    """Go warns but forwards a payload it does not know; unknown fields survive the relay."""
    unknown = models.DataPacket(sequence=3).SerializeToString() + bytes([0xFA, 0x06, 1, 0x2A])
    dp = relay.prepare(models.DataPacket.FromString(unknown), RELIABLE, ALICE)
    assert dp is not None and dp.participant_identity == "alice"
    assert dp.SerializeToString().endswith(bytes([0xFA, 0x06, 1, 0x2A]))


def test_an_agent_may_stream_text_for_the_participant_it_transcribes() -> None:
    """An agent's text stream header for another identity keeps it, marked generated."""
    header = models.DataStream.Header(stream_id="s", topic="lk.transcription",
                                      text_header=models.DataStream.TextHeader())
    dp = relay.prepare(models.DataPacket(participant_identity="caller", stream_header=header),
                       RELIABLE, AGENT)
    assert dp is not None and dp.participant_identity == "caller"
    assert dp.stream_header.text_header.generated
    forged = relay.prepare(models.DataPacket(participant_identity="caller", stream_header=header),
                           RELIABLE, ALICE)
    assert forged is not None and forged.participant_identity == "alice"


def test_recipients_exclude_the_sender_and_honour_destinations() -> None:
    """Everyone else by default; only the named identities (or user sids) otherwise."""
    room = [relay.Recipient("PA_alice", "alice"), relay.Recipient("PA_bob", "bob"),
            relay.Recipient("PA_carol", "carol")]
    everyone = relay.recipients(_user(), "PA_alice", room)
    assert [r.identity for r in everyone] == ["bob", "carol"]
    dp = relay.prepare(_user(destination_identities=["carol"]), RELIABLE, ALICE)
    assert [r.identity for r in relay.recipients(dp, "PA_alice", room)] == ["carol"]
    by_sid = models.DataPacket(user=models.UserPacket(payload=b"x", destination_sids=["PA_bob"]))
    assert [r.identity for r in relay.recipients(by_sid, "PA_alice", room)] == ["bob"]


def test_a_reliable_sequence_must_advance() -> None:
    """A repeated or older reliable sequence is dropped; lossy and unsequenced always pass."""
    assert relay.sequence_advances(RELIABLE, 5, 4)
    assert not relay.sequence_advances(RELIABLE, 4, 4)
    assert relay.sequence_advances(RELIABLE, 0, 4)
    assert relay.sequence_advances(LOSSY, 1, 4)


def test_metadata_update_rules() -> None:
    """Empty name/metadata leave them; an empty attribute value deletes the key."""
    p = Participant(sid="PA_a", identity="a", name="Ann", kind=0, metadata="m", joined_at_s=0.0,
                    attributes={"keep": "1", "drop": "2"}, sink=None,
                    permission=models.ParticipantPermission())
    changed = apply_metadata_update(p, proto.UpdateParticipantMetadata(
        attributes={"drop": "", "new": "3"}))
    assert changed and (p.name, p.metadata, p.attributes) == ("Ann", "m", {"keep": "1", "new": "3"})
    assert not apply_metadata_update(p, proto.UpdateParticipantMetadata())
    apply_metadata_update(p, proto.UpdateParticipantMetadata(name="Anna", metadata="n"))
    assert (p.name, p.metadata) == ("Anna", "n")
