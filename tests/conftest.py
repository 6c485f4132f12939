"""Shared pytest setup: the LiveKit server fixture (emulator, or a real server via LIVEKIT_URL)."""

pytest_plugins = ["voiceops.testing.livekit.pytest_plugin"]
