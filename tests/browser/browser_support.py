"""Support for the browser tests: the sandbox they run against, the spoken question, screenshots.

The sandbox is ``voiceops run --sandbox`` on free ports (emulator, Letta stand-in, workers,
proxy), started through the end-to-end harness in tests/e2e/stack.py.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import wave
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from stack import Stack, stack_config

from voiceops.testing.chromium import Page
from voiceops.testing.harness import free_port, wait_for
from voiceops.testing.tools import REPO_ROOT

QUESTION: Final = "What is the capital of France?"
# Seconds of silence before and after the question: the fake microphone loops the file, so
# the agent hears the whole question at least once, however late it subscribed.
LEAD_S: Final = 1.0
TAIL_S: Final = 9.0
DEADLINE_S: Final = 3  # monitor.job_request_deadline_s in the browser sandbox


class SandboxLiveKit:
    """Where the sandbox's emulator will listen (the stack config needs url and api_key)."""

    def __init__(self) -> None:
        port = free_port()
        self.url, self.http_url, self.api_key = (f"ws://127.0.0.1:{port}",
                                                 f"http://127.0.0.1:{port}", "devkey")

    def faults(self, body: dict[str, Any] | None) -> None:
        """POST (set) or DELETE (clear) the emulator's faults."""
        req = urllib.request.Request(self.http_url + "/emulator/faults",
                                     method="POST" if body else "DELETE",
                                     data=json.dumps(body).encode() if body else None)
        with urllib.request.urlopen(req, timeout=10):
            pass


def start_sandbox(tmp: Path, **overrides: Any) -> tuple[Stack, SandboxLiveKit]:
    lk = SandboxLiveKit()
    sections = stack_config(tmp, lk, workers=1, monitor__job_request_deadline_s=DEADLINE_S,
                            heartbeat__interval_s=30, heartbeat__timeout_s=5,
                            letta__base_url=f"http://127.0.0.1:{free_port()}",
                            voice__stt="pocketsphinx", voice__tts="piper", **overrides)
    return Stack.start(tmp, sections, None, sandbox=True), lk


def speak(text: str, out: Path) -> Path:
    """``text`` spoken by piper (the sandbox agent's own offline voice) into a 16-bit mono WAV,
    padded with silence."""
    from voiceops.agent.offline import load_piper, piper_pcm

    engine = load_piper()
    rate_hz = engine.sample_rate_hz
    silence = b"\0\0"
    with wave.open(str(out), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(rate_hz)
        dst.writeframes(silence * int(LEAD_S * rate_hz) + piper_pcm(engine, text) +
                        silence * int(TAIL_S * rate_hz))
    return out


def artifacts_dir() -> Path:
    """Where screenshots go: ``$VOICEOPS_SCREENSHOTS_DIR`` (``make screenshots``: docs/), else
    build/test-artifacts/browser."""
    configured = os.environ.get("VOICEOPS_SCREENSHOTS_DIR", "")
    return Path(configured) if configured else REPO_ROOT / "build" / "test-artifacts" / "browser"


def shoot(page: Page, name: str) -> Path:
    return page.screenshot(artifacts_dir() / f"debug-{name}.png")


def snapshot(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("window.voiceopsDebug.snapshot()"))


def wait_state(page: Page, state: str, timeout_s: float) -> dict[str, Any]:
    """The snapshot once the page is in ``state``; on a timeout, what the page showed instead."""
    try:
        return wait_for(lambda: (s := snapshot(page))["state"] == state and s, timeout_s,
                        f"the page to reach state {state!r}")
    except AssertionError as exc:
        log = text_of(page, "log").splitlines()[-12:]
        raise AssertionError(f"{exc}; the page: {json.dumps(snapshot(page))}; its log:\n" +
                             "\n".join(log)) from None


def text_of(page: Page, element_id: str) -> str:
    return str(page.evaluate(f"document.getElementById({json.dumps(element_id)}).innerText"))
