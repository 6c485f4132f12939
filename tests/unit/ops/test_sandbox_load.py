"""Sandbox workers count their calls as load, so a busy laptop still gets its calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceops import config, sandbox
from voiceops.worker.options import WorkerOptions

REPO = Path(__file__).resolve().parents[3]


def test_sandbox_uses_its_max_jobs_only_when_none_is_configured() -> None:
    """max_jobs 0 becomes SANDBOX_MAX_JOBS in the sandbox; a configured value, or no sandbox,
    stays."""
    assert sandbox.worker_max_jobs(0, sandbox=True) == sandbox.SANDBOX_MAX_JOBS
    assert sandbox.worker_max_jobs(20, sandbox=True) == 20
    assert sandbox.worker_max_jobs(0, sandbox=False) == 0


@pytest.mark.parametrize(("env", "expected"), [("1", sandbox.SANDBOX_MAX_JOBS), ("", 0)])
def test_worker_options_from_the_shipped_config(monkeypatch: pytest.MonkeyPatch, env: str,
                                                expected: int) -> None:
    """The shipped config (max_jobs 0): a sandbox worker counts jobs, a production one CPU."""
    monkeypatch.setenv("VOICEOPS_SANDBOX", env)
    cfg = config.load(REPO / "config" / "voiceops.toml")
    assert cfg.workers.max_jobs == 0
    opts = WorkerOptions.from_config(cfg, config.Secrets(livekit_api_secret="x"))
    assert opts.max_jobs == expected
