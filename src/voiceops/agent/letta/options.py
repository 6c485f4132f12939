"""The Letta brain's options: one frozen dataclass, built from ``[letta]`` and the secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from voiceops.config import Config, LettaConfig, Secrets

DEFAULT_APOLOGY: Final = LettaConfig().apology


@dataclass(frozen=True)
class LettaBrainOptions:
    """How the brain reaches Letta and how long it waits (units in the names)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    # The request plus every ping until the first assistant token must fit in this.
    first_token_timeout_s: float = 8.0
    # After the first token, a gap longer than this between stream events is a dropped stream.
    stream_idle_timeout_s: float = 10.0
    apology: str = DEFAULT_APOLOGY
    # One Letta conversation per call (per LettaLLM); False: the agent's default thread.
    use_conversations: bool = True

    def __post_init__(self) -> None:
        if self.first_token_timeout_s <= 0 or self.stream_idle_timeout_s <= 0:
            raise ValueError("letta timeouts must be > 0")
        if not self.apology.strip():
            raise ValueError("letta apology must not be empty")

    @classmethod
    def from_config(cls, cfg: Config, secrets: Secrets) -> LettaBrainOptions:
        letta = cfg.letta
        return cls(base_url=letta.base_url.rstrip("/"), api_key=secrets.letta_api_key or None,
                   first_token_timeout_s=letta.first_token_timeout_s,
                   stream_idle_timeout_s=letta.stream_idle_timeout_s,
                   apology=letta.apology, use_conversations=letta.conversations)
