"""Kept for old command lines: `python -m voiceops.testing.livekit` runs `voiceops.emulator`."""

import sys

from voiceops.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
