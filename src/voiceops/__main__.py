"""``python -m voiceops``: the same as the ``voiceops`` command."""

from voiceops.cli import main

raise SystemExit(main())
