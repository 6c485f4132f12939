"""The Letta brain of the voice pipeline (see :mod:`voiceops.agent.letta.llm`)."""

from voiceops.agent.letta.client import close_shared_clients, shared_client
from voiceops.agent.letta.events import BrainEvent, BrainOutcome, to_voiceops_event
from voiceops.agent.letta.llm import LETTA_TURN_HANDLING, LettaLLM, LettaStream
from voiceops.agent.letta.options import DEFAULT_APOLOGY, LettaBrainOptions

__all__ = ["DEFAULT_APOLOGY", "LETTA_TURN_HANDLING", "BrainEvent", "BrainOutcome",
           "LettaBrainOptions", "LettaLLM", "LettaStream", "close_shared_clients", "shared_client",
           "to_voiceops_event"]
