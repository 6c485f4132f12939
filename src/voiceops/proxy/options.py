"""The proxy's options: one frozen value built from the config, passed down whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from voiceops.config import Config, Secrets, http_url, parse_listen
from voiceops.supervisor.control import default_socket_path

from .liveness import DISPATCH_GRACE_S

# Not config keys (DESIGN's [proxy] keys are a contract): fixed operational bounds.
LIVEKIT_CALL_TIMEOUT_S = 5.0
READY_PROBE_TIMEOUT_S = 2.0
READY_CACHE_S = 2.0
LETTA_TIMEOUT_S = 5.0
AGENTS_CACHE_S = 5.0
MAX_METADATA_BYTES = 4096
ROOM_SYNC_INTERVAL_S = 60.0  # the full room list behind the proxy's room book (roomsync.py)
# Slow clients cannot hold connections: headers must arrive within HEADER_TIMEOUT_S of the
# connection (or of the previous response), a body within BODY_TIMEOUT_S of its headers.
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProxyOptions:
    listen_host: str
    listen_port: int
    livekit_url: str
    livekit_http_url: str
    livekit_api_key: str
    agent_name: str
    letta_base_url: str
    default_letta_agent_id: str
    allowed_origins: frozenset[str]
    token_ttl_s: float
    max_body_bytes: int
    rate_limit_per_minute: int
    livekit_call_timeout_s: float = LIVEKIT_CALL_TIMEOUT_S
    ready_probe_timeout_s: float = READY_PROBE_TIMEOUT_S
    ready_cache_s: float = READY_CACHE_S
    letta_timeout_s: float = LETTA_TIMEOUT_S
    agents_cache_s: float = AGENTS_CACHE_S
    max_metadata_bytes: int = MAX_METADATA_BYTES
    dispatch_grace_s: float = DISPATCH_GRACE_S
    room_sync_interval_s: float = ROOM_SYNC_INTERVAL_S
    control_socket: str = ""  # the supervisor's control socket (GET /api/dispatches/{id})
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S


@dataclass(frozen=True)
class ProxySecrets:
    """What the proxy needs from :class:`voiceops.config.Secrets`; never logged (repr hidden)."""

    livekit_api_secret: str = field(repr=False)
    letta_api_key: str = field(default="", repr=False)
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    token_api_keys: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_secrets(cls, secrets: Secrets) -> ProxySecrets:
        return cls(secrets.livekit_api_secret, secrets.letta_api_key, secrets.proxy_api_keys,
                   secrets.token_api_keys)

    def all_values(self) -> tuple[str, ...]:
        """Every secret string, for redaction checks."""
        return tuple(v for v in (self.livekit_api_secret, self.letta_api_key, *self.api_keys,
                                 *self.token_api_keys) if v)


def options_from_config(cfg: Config) -> ProxyOptions:
    host, port = parse_listen("proxy.listen", cfg.proxy.listen)
    return ProxyOptions(
        listen_host=host,
        listen_port=port,
        livekit_url=cfg.livekit.url,
        livekit_http_url=http_url(cfg.livekit.url),
        livekit_api_key=cfg.livekit.api_key,
        agent_name=cfg.agent.name,
        letta_base_url=cfg.letta.base_url.rstrip("/"),
        default_letta_agent_id=cfg.letta.default_agent_id,
        allowed_origins=frozenset(o.rstrip("/") for o in cfg.proxy.allowed_origins),
        token_ttl_s=cfg.proxy.token_ttl_s,
        max_body_bytes=cfg.proxy.max_body_bytes,
        rate_limit_per_minute=cfg.proxy.rate_limit_per_minute,
        # The supervisor hands down its own environment, so this resolves to its socket.
        control_socket=str(default_socket_path(cfg)),
    )
