"""Entry point: `python -m voiceops.emulator --port 7880 ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
