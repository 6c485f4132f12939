"""The job process's rtc runtime keeps the SDK's native DEBUG/TRACE records native
(:mod:`voiceops.worker.rtcruntime`): a join still works, and ~1,270 records no longer cross
into Python per join unless ``LIVEKIT_RTC_DEBUG`` asks for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from voiceops.worker.rtcruntime import DEFAULT_RUST_LOG, captures_native_logs

SCRIPT = Path(__file__).with_name("rtc_logs_script.py")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False), ({"LIVEKIT_RTC_DEBUG": "0"}, False), ({"LIVEKIT_RTC_DEBUG": "yes"}, False),
    ({"LIVEKIT_RTC_DEBUG": "1"}, True), ({"LIVEKIT_RTC_DEBUG": " True "}, True),
])
def test_native_logs_cross_only_for_the_sdks_debug_switch(env: dict[str, str],
                                                          expected: bool) -> None:
    assert captures_native_logs(env) is expected


def _join(server: Any, **env: str) -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("RUST_LOG", "LIVEKIT_RTC_DEBUG")} | env
    done = subprocess.run(
        [sys.executable, str(SCRIPT), server.url, server.api_key, server.api_secret,
         f"rtc-logs-{uuid.uuid4().hex[:6]}"],
        env=child_env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.livekit
@pytest.mark.process
def test_a_join_forwards_no_native_debug_records(livekit_server: Any) -> None:
    quiet = _join(livekit_server)
    assert quiet["connected"] is True
    assert quiet["rust_log"] == DEFAULT_RUST_LOG
    debugging = _join(livekit_server, LIVEKIT_RTC_DEBUG="1", RUST_LOG="info")
    assert debugging["connected"] is True and debugging["rust_log"] == "info"
    # The SDK's own behaviour forwards hundreds per join (1,270 measured); ours a handful at
    # most (the records logged while the runtime starts, before capture is switched off).
    assert debugging["records"] > 200, debugging
    assert quiet["records"] <= 10, quiet
