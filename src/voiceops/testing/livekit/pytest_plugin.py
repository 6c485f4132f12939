"""Placeholder until the emulator's pytest plugin lands (replaced by the emulator work)."""
