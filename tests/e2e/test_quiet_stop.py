"""Stopping the sandbox right after a test dispatch, as a new user does with Ctrl-C: prompt,
quiet, and saying what it waits for (issue 13 items 4 and 5, issue 11 item 9)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from stack import Stack, stack_config
from test_sandbox import Sandbox

from voiceops.testing.harness import NotifyListener, wait_for

pytestmark = [pytest.mark.process]

DRAIN_TIMEOUT_S = 60  # far longer than a prompt stop may take


def test_ctrl_c_after_an_unanswered_room_is_prompt_and_quiet(tmp_path: Path) -> None:
    """1. run --sandbox with LiveKit's dev secret; 2. dispatch to a room nobody joins (the
    agent would wait 120 s for a human); 3. SIGINT. The agent leaves when its worker drains, so
    the stop takes seconds, not the drain budget; STATUS= and the terminal say what the stop
    waits for; the supervisor logs no WARNING (no orphans_killed, no PyJWT short-key
    warning in any process), and no alert fires during the stop."""
    notify = NotifyListener(tmp_path / "notify.sock")
    lk = Sandbox()
    sections = stack_config(tmp_path, lk, workers=2, workers__drain_timeout_s=DRAIN_TIMEOUT_S,
                            heartbeat__interval_s=2, heartbeat__timeout_s=1.5)
    env = {"LIVEKIT_API_SECRET": "", "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "120",
           "NOTIFY_SOCKET": str(notify.path)}
    stack = Stack.start(tmp_path, sections, None, env=env, sandbox=True)
    try:
        code, body = stack.dispatch("nobody-comes")
        assert code == 200, body
        stack.wait_joined(body["dispatch_id"])
        wait_for(lambda: any(p["active_jobs"] for p in stack.sup.procs()), 10, "a job counted")
        started = time.monotonic()
        stack.sup.signal(signal.SIGINT)
        assert stack.sup.wait(DRAIN_TIMEOUT_S / 2) == 0
        took = time.monotonic() - started
    finally:
        stack.close()
        notify.close()
    assert took < 15, f"the stop took {took:.1f} s"
    whole = stack.sup.stderr()
    out = (tmp_path / "supervisor.stdout").read_text(errors="replace")
    assert "HMAC key" not in whole + out
    assert whole.count("livekit_dev_secret") == 1
    # From the stop on (a busy machine may make a worker report itself full before it).
    err = whole[whole.index("shutdown_requested"):]
    assert not re.findall(r"^\S+ \S+ (WARNING|ERROR) .*$", err, re.MULTILINE), err
    assert re.search(r"shutdown_waiting progress='waiting for .*worker-\d \(1 call\)", err), err
    assert not re.search(r"alert_fired", err), err
    waiting = [line for _, line in notify.lines("STATUS=stopping: waiting for")
               if re.search(r"worker-\d \(1 call\).*; \d+ s left", line)]
    assert waiting, notify.lines("STATUS=")
