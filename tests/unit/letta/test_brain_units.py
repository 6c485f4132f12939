"""The brain's pure parts: the deterministic answers, options, config keys, event mapping."""

from __future__ import annotations

import pytest

from voiceops import config
from voiceops.agent.letta_llm import BrainEvent, BrainOutcome, LettaBrainOptions, to_voiceops_event
from voiceops.config import ConfigError
from voiceops.letta_standin import brain
from voiceops.letta_standin.state import DEFAULT_AGENT_ID, Faults
from voiceops.testing.stub_llm import user_turns


@pytest.mark.parametrize(("turns", "answer"), [
    (["What is the capital of France?"], brain.CAPITAL_ANSWER),
    (["what is the capital of brand"], brain.CAPITAL_ANSWER),  # France, as STT once heard it
    (["Hello, Robot!"], "You said: hello robot."),
    (["apples", "What did I say before?"], "Before that you said: apples."),
    (["what did i say before"], brain.NOTHING_BEFORE),
    (["please tell me a story"], brain.STORY_ANSWER),
])
def test_the_deterministic_brain(turns: list[str], answer: str) -> None:
    """Fixed question, echo, memory of the thread, story: the same words every time."""
    assert brain.reply(turns) == answer


def test_tokens_rejoin_to_the_text() -> None:
    """Token chunks carry their leading spaces, so they concatenate back to the reply."""
    assert "".join(brain.tokens(brain.STORY_ANSWER)) == brain.STORY_ANSWER


def test_stub_llm_reads_user_turns_plain_and_json_wrapped() -> None:
    """Letta's prompts carry user turns as text or as {"type": "user_message"} JSON;
    heartbeats and system alerts are not the caller."""
    msgs = [{"role": "system", "content": "x"}, {"role": "user", "content": "one"},
            {"role": "user", "content": '{"type": "user_message", "message": "two"}'},
            {"role": "user", "content": '{"type": "heartbeat", "reason": "x"}'},
            {"role": "user", "content": [{"type": "text", "text": "three"}]}]
    assert user_turns(msgs) == ["one", "two", "three"]


def test_letta_config_keys_have_defaults_and_name_themselves_on_error() -> None:
    """[letta] timeouts, conversations and apology: defaults, and errors naming the key."""
    cfg = config.from_dict({})
    opts = LettaBrainOptions.from_config(cfg, config.Secrets(letta_api_key="k"))
    assert (opts.first_token_timeout_s, opts.use_conversations, opts.api_key) == (8.0, True, "k")
    for bad, key in (({"first_token_timeout_s": 0}, "letta.first_token_timeout_s"),
                     ({"stream_idle_timeout_s": -1}, "letta.stream_idle_timeout_s"),
                     ({"conversations": "yes"}, "letta.conversations"),
                     ({"apology": "  "}, "letta.apology")):
        with pytest.raises(ConfigError, match=f"^{key}"):
            config.from_dict({"letta": bad})


def test_sandbox_fills_in_the_standins_default_agent_only_when_none_is_set() -> None:
    """--sandbox: an empty letta.default_agent_id becomes the stand-in's sample agent."""
    assert config.SANDBOX_LETTA_AGENT_ID == DEFAULT_AGENT_ID
    empty = config.from_dict({})
    assert config.with_sandbox_defaults(empty).letta.default_agent_id == DEFAULT_AGENT_ID
    mine = config.from_dict({"letta": {"default_agent_id": "agent-mine"}})
    assert config.with_sandbox_defaults(mine).letta.default_agent_id == "agent-mine"


def test_only_failed_turns_become_voiceops_events_without_words() -> None:
    """ok → None; a failure → letta_error with kind, agent, latency and the detail."""
    ok = BrainEvent(kind=BrainOutcome.OK, letta_agent_id="agent-1", duration_s=0.4)
    assert to_voiceops_event(ok) is None
    bad = BrainEvent(kind=BrainOutcome.TIMEOUT, letta_agent_id="agent-1", duration_s=8.0004,
                     detail="no first token in time")
    ev = to_voiceops_event(bad)
    assert ev is not None and (ev.kind, ev.letta_agent_id, ev.latency_s) == (
        "timeout", "agent-1", 8.0)


def test_options_refuse_impossible_values() -> None:
    """Zero timeouts or an empty apology are refused when the options are built."""
    with pytest.raises(ValueError, match="timeouts must be > 0"):
        LettaBrainOptions(base_url="http://x", first_token_timeout_s=0)
    with pytest.raises(ValueError, match="apology must not be empty"):
        LettaBrainOptions(base_url="http://x", apology=" ")


def test_fault_knobs_validate_by_name() -> None:
    """Faults.update refuses unknown knobs and out-of-range values, naming them."""
    f = Faults()
    f.update({"down_status": 503, "first_token_delay_s": 2})
    assert (f.down_status, f.first_token_delay_s) == (503, 2.0)
    with pytest.raises(ValueError, match=r"^drop_after_tokens: must be a int"):
        f.update({"drop_after_tokens": 1.5})


async def test_letta_sessions_turn_preemptive_generation_off() -> None:
    """LETTA_TURN_HANDLING turns off livekit-agents' preemptive generation (on by default),
    whose speculative turns Letta would store."""
    from livekit.agents import AgentSession

    from voiceops.agent.letta_llm import LETTA_TURN_HANDLING

    assert AgentSession().options.preemptive_generation["enabled"] is True
    session = AgentSession(turn_handling=LETTA_TURN_HANDLING)
    assert session.options.preemptive_generation["enabled"] is False
