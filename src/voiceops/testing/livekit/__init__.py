"""Test support for the LiveKit emulator.

The pytest plugin is ``voiceops.testing.livekit.pytest_plugin``.

The emulator itself is a product feature and lives in :mod:`voiceops.emulator`; the names this
package used to export are re-exported here so existing imports keep working.
"""

from voiceops.emulator import Emulator, EmulatorOptions, FaultError, Faults, build_app, main, serve

__all__ = ["Emulator", "EmulatorOptions", "FaultError", "Faults", "build_app", "main", "serve"]
