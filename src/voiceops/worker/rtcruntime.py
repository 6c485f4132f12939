"""The ``livekit`` rtc runtime of a job process: started while idle, its native logs kept native.

livekit 1.1.21's FFI forwards every record of its Rust and libwebrtc logs, DEBUG and TRACE
included, to Python (``capture_logs``), where the SDK drops the DEBUG ones unless
``LIVEKIT_RTC_DEBUG`` is set. One join forwards about 1,270 records (1,200 of them libwebrtc
DEBUG lines), each formatted in Rust, batched, parsed in Python and thrown away: half the
CPU of a join (69 ms with capture, 32-36 ms without, measured on this machine). Their INFO
lines also carry room names, which are callers' data. So the runtime is started with capture,
as the SDK does, and capture is switched off at once: the native logger then writes
through ``env_logger`` to the process's stderr (the worker's, so the supervisor's log), at
``RUST_LOG`` (default here: warnings, and libwebrtc's errors). ``LIVEKIT_RTC_DEBUG`` keeps the
SDK's behaviour for whoever is debugging the WebRTC path.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Final

# env_logger's filter when the operator set none: the native warnings, libwebrtc's errors.
DEFAULT_RUST_LOG: Final = "warn,libwebrtc=error"
_TRUTHY: Final = ("1", "true")
logger = logging.getLogger("voiceops.worker.rtc")


def captures_native_logs(env: Mapping[str, str]) -> bool:
    """Whether native log records should cross into Python logging (the SDK's debug switch)."""
    return env.get("LIVEKIT_RTC_DEBUG", "").strip().lower() in _TRUTHY


def start(env: MutableMapping[str, str] = os.environ) -> None:
    """Start the rtc runtime in this process (idempotent). Per process, never in the forkserver:
    its threads would not survive a fork (the SDK's client checks its pid)."""
    from livekit.rtc._ffi_client import FfiClient, ffi_event_callback
    from livekit.rtc.version import __version__

    env.setdefault("RUST_LOG", DEFAULT_RUST_LOG)  # read once, when the native logger is built
    client = FfiClient.instance
    if captures_native_logs(env):
        return
    try:  # initialising again only updates the server's config: same callback, capture off
        client._ffi_lib.livekit_ffi_initialize(  # no public switch in livekit 1.1.21
            ffi_event_callback, False, b"python", __version__.encode("ascii"))
    except (AttributeError, TypeError, ctypes.ArgumentError) as exc:
        # Another SDK version: its logs keep crossing into Python; the job still runs.
        logger.warning("rtc_log_capture_kept error=%s", type(exc).__name__)
