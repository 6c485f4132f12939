"""voiceops.testing.tools: where tools are found, and skip-locally / fail-in-CI for missing ones."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from voiceops.testing.tools import REPO_ROOT, find_tool, require_tool


def make_exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOICEOPS_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    return tmp_path


def test_tools_dir_wins_over_path(tools: Path) -> None:
    """.tools/bin is searched before PATH."""
    mine = make_exe(tools / "tools" / "bin" / "promtool")
    make_exe(tools / "path" / "promtool")
    assert find_tool("promtool") == str(mine)


def test_unpacked_root_and_path_fallbacks(tools: Path) -> None:
    """.tools/root/usr/bin is searched next, then PATH; a non-executable file does not count."""
    unpacked = make_exe(tools / "tools" / "root" / "usr" / "bin" / "amtool")
    on_path = make_exe(tools / "path" / "prometheus")
    (tools / "tools" / "bin").mkdir(parents=True)
    (tools / "tools" / "bin" / "prometheus").write_text("not executable")
    assert find_tool("amtool") == str(unpacked)
    assert find_tool("prometheus") == str(on_path)


def test_alertmanager_alias(tools: Path) -> None:
    """alertmanager finds Debian's prometheus-alertmanager binary."""
    debian = make_exe(tools / "tools" / "bin" / "prometheus-alertmanager")
    assert find_tool("alertmanager") == str(debian)


def test_missing_tool_skips_locally(tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CI a missing tool skips the test and says how to install it."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"install-tools\.sh"):
        require_tool("promtool")


def test_missing_tool_fails_in_ci(tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true a missing tool fails the test instead of skipping it."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="never a silent skip"):
        require_tool("promtool")


def test_install_script_is_valid_bash() -> None:
    """scripts/install-tools.sh is executable and parses (bash -n)."""
    script = REPO_ROOT / "scripts" / "install-tools.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
