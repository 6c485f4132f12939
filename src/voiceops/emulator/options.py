"""Options of the LiveKit emulator (one frozen dataclass, units in the names)."""

from __future__ import annotations

from dataclasses import dataclass

# livekit-server --dev defaults: the key/secret pair every local LiveKit tutorial uses.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


@dataclass(frozen=True)
class EmulatorOptions:
    """How the emulator listens and how its timers behave (defaults mirror livekit-server --dev)."""

    host: str = "127.0.0.1"
    port: int = 7880
    api_key: str = DEV_API_KEY
    api_secret: str = DEV_API_SECRET
    webhook_urls: tuple[str, ...] = ()
    # psrpc's DefaultClientTimeout: the JobRequest RPC (node selection, AvailabilityRequest,
    # the worker's answer) must finish within it. A worker answering later loses the job, and
    # the job is NOT offered to another worker. Raising it departs from the Go server.
    availability_timeout_s: float = 3.0
    # psrpc's DefaultAffinityShortCircuit: after the first claim the client waits this long for
    # a better one before it picks a node, so every JobRequest starts this late.
    affinity_short_circuit_s: float = 0.2
    # Go: Room.DeleteAgentDispatch waits this long for a terminated agent to leave, then
    # removes it from the room.
    agent_leave_wait_s: float = 3.0
    # Go: RegisterTimeout, how long a fresh /agent socket may wait for RegisterWorkerRequest.
    register_timeout_s: float = 10.0
    # Go room defaults: a room nobody joined closes after empty_timeout; after the last
    # participant left it closes after departure_timeout.
    empty_timeout_s: int = 300
    departure_timeout_s: int = 20
    room_reaper_interval_s: float = 0.5
    webhook_attempts: int = 3
    webhook_timeout_s: float = 5.0
    webhook_backoff_s: float = 0.2
    webhook_queue_size: int = 1000
    agent_token_ttl_s: int = 3600
    server_version: str = "1.9.0"
    node_id: str = "ND_voiceops_emulator"
    region: str = "local"

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ValueError("api_key and api_secret must be non-empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        for name in ("availability_timeout_s", "register_timeout_s", "room_reaper_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.affinity_short_circuit_s < 0 or self.agent_leave_wait_s < 0:
            raise ValueError("affinity_short_circuit_s and agent_leave_wait_s must be >= 0")
        if self.affinity_short_circuit_s >= self.availability_timeout_s:
            raise ValueError("availability_timeout_s must be longer than affinity_short_circuit_s")
        if self.empty_timeout_s < 0 or self.departure_timeout_s < 0:
            raise ValueError("empty_timeout_s and departure_timeout_s must be >= 0")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be >= 1")
