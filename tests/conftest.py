"""Shared pytest setup: the LiveKit server fixture (emulator, or a real server via LIVEKIT_URL),
the Letta server fixture (stand-in, or a real server via LETTA_BASE_URL),
and the real Prometheus / Alertmanager harness."""

pytest_plugins = [
    "voiceops.testing.livekit.pytest_plugin",
    "voiceops.testing.prom_plugin",
    "voiceops.testing.letta",
]
