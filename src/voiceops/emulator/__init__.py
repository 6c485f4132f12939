"""A LiveKit protocol emulator for tests and the sandbox (`voiceops emulator`).

Real livekit-agents workers and the real livekit-api client talk to it unchanged over
/agent (worker WebSocket), /twirp (RoomService, AgentDispatchService) and /rtc (WebRTC).
"""

from .cli import main
from .faults import FaultError, Faults
from .options import EmulatorOptions
from .server import Emulator, build_app, serve

__all__ = ["Emulator", "EmulatorOptions", "FaultError", "Faults", "build_app", "main", "serve"]
