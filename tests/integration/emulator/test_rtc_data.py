"""Data packets, text streams, RPC and attributes between two real `livekit.rtc.Room` clients.

Each client is a child process (rtc_client_script.py). Runs unchanged against a real
`livekit-server --dev` when LIVEKIT_URL is set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from emulator_helpers import participants_by_identity

try:
    from .rtc_client import RtcClient, connect, rtc_clients
except ImportError:  # collected as a rootdir-relative module (no __init__.py)
    from rtc_client import RtcClient, connect, rtc_clients

pytestmark = [pytest.mark.livekit, pytest.mark.process]

EVENT_DEADLINE_S = 15.0
QUIET_S = 2.0  # how long a packet that must not arrive is waited for


@contextlib.asynccontextmanager
async def _joined_pair(
    server, prefix: str, **alice_grants
) -> AsyncIterator[tuple[RtcClient, RtcClient, str]]:
    """alice (with `alice_grants`) then bob, joined to a fresh room."""
    room = f"{prefix}-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice", **alice_grants)
        await connect(bob, server, room, "bob")
        yield alice, bob, room


@pytest.mark.parametrize("mode", ["v1", "v0"])
async def test_data_text_and_rpc_reach_the_other_with_the_senders_identity(
    livekit_server_module, mode
) -> None:
    """B gets A's reliable and lossy packets, text stream and RPC as from alice; A gets the
    answer."""
    server, flags = livekit_server_module, ("v0",) if mode == "v0" else ()
    room = f"data-{mode}-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice", *flags)
        await connect(bob, server, room, "bob", *flags)
        await alice.expect("participant_connected", timeout_s=EVENT_DEADLINE_S)
        for index in range(5):  # in order on the reliable channel
            await alice.send("data", f"hello-{index}")
        received = [await bob.expect("data_received", timeout_s=EVENT_DEADLINE_S) for _ in range(5)]
        assert [r["data"] for r in received] == [f"hello-{i}" for i in range(5)]
        assert {(r["identity"], r["topic"]) for r in received} == {("alice", "test")}

        await alice.send("text", "a longer message, streamed")
        text = await bob.expect("text_received", timeout_s=EVENT_DEADLINE_S)
        assert (text["identity"], text["topic"], text["text"]) == (
            "alice", "chat", "a longer message, streamed")

        await alice.send("rpc", "bob", "ping")
        invoked = await bob.expect("rpc_invoked", timeout_s=EVENT_DEADLINE_S)
        assert (invoked["caller"], invoked["payload"]) == ("alice", "ping")
        result = await alice.expect("rpc_result", "rpc_failed", timeout_s=EVENT_DEADLINE_S)
        assert result == {"event": "rpc_result", "payload": "echo:ping"}

        await bob.send("data", "back", "lossy")
        lossy = await alice.expect("data_received", timeout_s=EVENT_DEADLINE_S)
        assert (lossy["identity"], lossy["data"]) == ("bob", "back")


async def test_destination_identities_reach_only_their_target(livekit_server_module) -> None:
    """A packet for carol reaches carol, not bob; one for everyone reaches both."""
    server = livekit_server_module
    room = f"data-dest-{time.monotonic_ns()}"
    async with rtc_clients(3, server) as (alice, bob, carol):
        for client, identity in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            await connect(client, server, room, identity)
        await alice.send("data", "for-carol", "to=carol")
        await alice.send("data", "for-all")
        first = await carol.expect("data_received", timeout_s=EVENT_DEADLINE_S)
        assert (first["identity"], first["data"]) == ("alice", "for-carol")
        second = await carol.expect("data_received", timeout_s=EVENT_DEADLINE_S)
        assert second["data"] == "for-all"
        # Reliable and in order: bob's first packet from alice is the broadcast one.
        only = await bob.expect("data_received", timeout_s=EVENT_DEADLINE_S)
        assert (only["identity"], only["data"]) == ("alice", "for-all")


async def test_without_can_publish_data_nothing_is_relayed(livekit_server_module) -> None:
    """A participant whose token lacks canPublishData sends, and nobody receives it."""
    server = livekit_server_module
    async with _joined_pair(server, "data-denied", can_publish_data=False) as (alice, bob, _room):
        await bob.send("data", "bob-can")  # the channels work: alice may receive
        received = await alice.expect("data_received", timeout_s=EVENT_DEADLINE_S)
        assert received["data"] == "bob-can"
        await alice.send("data", "alice-cannot")
        await alice.expect("data_sent", timeout_s=EVENT_DEADLINE_S)
        with pytest.raises(TimeoutError):
            await bob.expect("data_received", timeout_s=QUIET_S)


async def test_attributes_reach_the_others_and_an_empty_value_deletes(
    livekit_server_module,
) -> None:
    """B sees A's attribute changes (set, then deleted); ListParticipants shows them."""
    server = livekit_server_module
    async with _joined_pair(server, "data-attrs", can_update_own_metadata=True) as (
        alice,
        bob,
        room,
    ):
        await alice.send("attrs", "lk.agent.state=listening", "mood=calm")
        assert (await alice.expect("attrs_set", "attrs_failed", timeout_s=EVENT_DEADLINE_S))[
            "event"] == "attrs_set"
        changed = await bob.expect("attributes_changed", timeout_s=EVENT_DEADLINE_S)
        assert changed["identity"] == "alice"
        assert changed["attributes"] == {"lk.agent.state": "listening", "mood": "calm"}
        listed = await participants_by_identity(server, room)
        assert dict(listed["alice"].attributes) == {"lk.agent.state": "listening", "mood": "calm"}

        await alice.send("attrs", "mood=")
        await alice.expect("attrs_set", "attrs_failed", timeout_s=EVENT_DEADLINE_S)
        deleted = await bob.expect("attributes_changed", timeout_s=EVENT_DEADLINE_S)
        assert deleted["attributes"] == {"lk.agent.state": "listening"}


async def test_attributes_need_can_update_own_metadata(livekit_server_module) -> None:
    """Without canUpdateOwnMetadata the update is refused and nobody sees it."""
    server = livekit_server_module
    async with _joined_pair(server, "data-attrs-denied") as (alice, bob, room):
        await alice.send("attrs", "mood=calm")
        refused = await alice.expect("attrs_set", "attrs_failed", timeout_s=EVENT_DEADLINE_S)
        # The Python SDK (1.1) does not raise on a refused request; its attributes stay empty.
        assert refused.get("attributes", {}) == {}, refused
        listed = await participants_by_identity(server, room)
        assert dict(listed["alice"].attributes) == {}
        with pytest.raises(TimeoutError):
            await bob.expect("attributes_changed", timeout_s=QUIET_S)


async def test_publisher_learns_its_track_got_a_subscriber(livekit_server_module) -> None:
    """A's SDK reports local_track_subscribed (the server's track_subscribed) once B subscribes."""
    server = livekit_server_module
    room = f"data-subscribed-{time.monotonic_ns()}"
    async with rtc_clients(2, server) as (alice, bob):
        await connect(alice, server, room, "alice")
        await alice.send("tone", "440", "30")
        published = await alice.expect("published", "error", timeout_s=EVENT_DEADLINE_S)
        with pytest.raises(TimeoutError):  # nobody has subscribed yet
            await alice.expect("local_track_subscribed", timeout_s=QUIET_S)
        await connect(bob, server, room, "bob")
        await bob.expect("track_subscribed", timeout_s=EVENT_DEADLINE_S)
        told = await alice.expect("local_track_subscribed", timeout_s=EVENT_DEADLINE_S)
        assert told["sid"] == published["sid"]
