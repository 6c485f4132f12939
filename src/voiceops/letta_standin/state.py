"""The stand-in's data: sample agents, conversations and each thread's user turns, and faults."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Final

from voiceops.letta_standin import shapes

# Fixed ids, so config/voiceops.toml can name the sandbox's default agent.
SAMPLE_AGENTS: Final = (
    ("agent-5e1f0c2a-8b3d-4c6e-9f10-1a2b3c4d5e01", "voiceops-echo",
     "Repeats what you say; knows the capital of France. The sandbox's default agent."),
    ("agent-5e1f0c2a-8b3d-4c6e-9f10-1a2b3c4d5e02", "voiceops-storyteller",
     "Tells a short story when asked to tell a story."),
    ("agent-5e1f0c2a-8b3d-4c6e-9f10-1a2b3c4d5e03", "voiceops-memory",
     "Remembers, per call, what you said before."),
)
DEFAULT_AGENT_ID: Final = SAMPLE_AGENTS[0][0]


@dataclass
class Faults:
    """Knobs set over HTTP (``POST /standin/faults``); all off by default."""

    down_status: int = 0  # non-zero: every /v1 route answers this status (e.g. 503)
    first_token_delay_s: float = 0.0  # pings only, then the reply, this much later
    error_after_tokens: int = -1  # >= 0: after this many tokens, an SSE error event
    drop_after_tokens: int = -1  # >= 0: after this many tokens, the connection is cut
    conversations_status: int = 0  # e.g. 404: a server from before conversations (no route)
    token_delay_s: float = 0.0  # > 0: this pause between tokens instead of the server's own
    conversation_busy: int = 0  # 1: conversations answer 409 (a run holds them) until cancelled

    def update(self, values: dict[str, Any]) -> None:
        """Set known knobs; raise ValueError naming the first bad one."""
        types = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in types:
                raise ValueError(f"{key}: unknown fault (known: {', '.join(types)})")
            want = float if types[key] == "float" else int
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    want is int and not isinstance(value, int)):
                raise ValueError(f"{key}: must be a {want.__name__}")
            if key.endswith("_status") and value and not 400 <= value <= 599:
                raise ValueError(f"{key}: must be 0 or an HTTP error status (400-599)")
            if key.endswith("_s") and not 0 <= value <= 600:
                raise ValueError(f"{key}: must be within 0..600 seconds")
            setattr(self, key, want(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class StandinState:
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # thread key ("conv-…", or the agent id for its default thread) → that thread's user turns
    turns: dict[str, list[str]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    cancelled: dict[str, int] = field(default_factory=dict)  # conversation → cancels of a busy run

    @classmethod
    def with_samples(cls) -> StandinState:
        state = cls()
        for agent_id, name, description in SAMPLE_AGENTS:
            state.add_agent(agent_id, name, description)
        return state

    def add_agent(self, agent_id: str, name: str, description: str) -> dict[str, Any]:
        agent = shapes.agent_state(agent_id, name, description, shapes.now_iso())
        self.agents[agent_id] = agent
        return agent

    def add_conversation(self, agent_id: str) -> dict[str, Any]:
        conv = shapes.conversation(shapes.new_id("conv"), agent_id, shapes.now_iso())
        self.conversations[conv["id"]] = conv
        return conv

    def snapshot(self) -> dict[str, Any]:
        """For GET /standin/state: counts only (turns are callers' words)."""
        return {"agents": sorted(self.agents), "conversations": len(self.conversations),
                "cancelled": dict(self.cancelled),
                "threads": {key: len(turns) for key, turns in self.turns.items()},
                "faults": self.faults.as_dict()}
