"""PyJWT's short-key warning, said once by the supervisor instead of by every process.

PyJWT warns on every token signed with an HMAC key under 32 bytes. The sandbox's secret is
``livekit-server --dev``'s public ``secret`` on purpose, so each child silences the warning and
the supervisor says what it means once, at start: a note in the sandbox, a warning otherwise.
"""

from __future__ import annotations

import logging
import warnings
from typing import Final

from voiceops.config import SANDBOX_API_SECRET

MIN_SECRET_BYTES: Final = 32  # RFC 7518 §3.2 for HS256
_PYJWT_MESSAGE: Final = "The HMAC key is"


def silence_short_key_warning() -> None:
    """Drop PyJWT's per-token warning in this process (the supervisor reports it once)."""
    warnings.filterwarnings("ignore", message=_PYJWT_MESSAGE)


def secret_note(secret: str, *, sandbox: bool) -> tuple[int, str] | None:
    """What to say about the LiveKit secret at start: (log level, message) or None."""
    size = len(secret.encode())
    if size >= MIN_SECRET_BYTES or not secret:
        return None
    if secret == SANDBOX_API_SECRET:
        # livekit-server --dev's public secret: fine on one machine, never in production.
        level = logging.INFO if sandbox else logging.WARNING
        return level, (f"livekit_dev_secret scope={'sandbox' if sandbox else 'deployment'} "
                       "signed_with=livekit-server-dev-public-secret")
    # Tokens signed with a short secret are easier to forge: use a longer one.
    return logging.WARNING, f"livekit_secret_short bytes={size} minimum={MIN_SECRET_BYTES}"
