"""The Letta brain's public interface (the code lives in :mod:`voiceops.agent.letta`)."""

from voiceops.agent.letta import (
    DEFAULT_APOLOGY,
    LETTA_TURN_HANDLING,
    BrainEvent,
    BrainOutcome,
    LettaBrainOptions,
    LettaLLM,
    LettaStream,
    close_shared_clients,
    shared_client,
    to_voiceops_event,
)

__all__ = ["DEFAULT_APOLOGY", "LETTA_TURN_HANDLING", "BrainEvent", "BrainOutcome",
           "LettaBrainOptions", "LettaLLM", "LettaStream", "close_shared_clients", "shared_client",
           "to_voiceops_event"]
