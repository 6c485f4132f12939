"""Shared pytest setup: the LiveKit server fixture (emulator, or a real server via LIVEKIT_URL),
and the real Prometheus / Alertmanager harness."""

pytest_plugins = [
    "voiceops.testing.livekit.pytest_plugin",
    "voiceops.testing.prom_plugin",
]
