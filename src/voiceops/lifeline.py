"""Children of the supervisor stop when it dies.

If the supervisor is SIGKILLed (or crashes), its children would otherwise live on as
orphans: registered with LiveKit, holding ports, never restarted. Each child asks the kernel
for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a worker starts a normal drain
and its calls are not cut. A no-op outside the supervisor.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Final

SUPERVISOR_PID_ENV: Final = "VOICEOPS_SUPERVISOR_PID"
_PR_SET_PDEATHSIG: Final = 1


def die_with_supervisor(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Arrange ``sig`` on the supervisor's death; True when armed."""
    expected = os.environ.get(SUPERVISOR_PID_ENV, "")
    if not expected.isdigit():
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != int(expected):
        os.kill(os.getpid(), sig)  # it died before we armed: same outcome, just sooner
    return True
