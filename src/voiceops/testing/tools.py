"""Find the Debian tools the tests use: prometheus, promtool, alertmanager, amtool, systemd-analyze.

`scripts/install-tools.sh` unpacks them into the project-local ``.tools/`` directory; a system
install on ``PATH`` works too. Tests call :func:`require_tool`: a missing tool skips the test
locally, but in CI (``CI=true``) it fails it, because a silent skip there hides a broken setup.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
INSTALL_HINT: Final = "run scripts/install-tools.sh"

# Debian calls the Alertmanager binary prometheus-alertmanager; upstream calls it alertmanager.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
    "prometheus-alertmanager": ("prometheus-alertmanager", "alertmanager"),
}


def tools_dir() -> Path:
    """The project-local tools directory (``$VOICEOPS_TOOLS_DIR`` overrides ``<repo>/.tools``)."""
    override = os.environ.get("VOICEOPS_TOOLS_DIR")
    return Path(override) if override else REPO_ROOT / ".tools"


def _candidates(name: str) -> tuple[str, ...]:
    return _ALIASES.get(name, (name,))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(name: str) -> str | None:
    """Absolute path of ``name``: ``.tools/bin``, then ``.tools/root/usr/bin``, then ``PATH``."""
    base = tools_dir()
    for candidate in _candidates(name):
        for directory in (base / "bin", base / "root" / "usr" / "bin"):
            path = directory / candidate
            if _executable(path):
                return str(path)
    for candidate in _candidates(name):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def in_ci() -> bool:
    """True when the ``CI`` environment variable says so (GitHub and most CIs set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:  # noqa: RET503 - pytest.skip() raises
    """The tool's path; skip the calling test if it is missing, or fail it when running in CI."""
    import pytest  # imported here so the module stays importable without the test extra

    path = find_tool(name)
    if path is not None:
        return path
    message = f"{name} not found in {tools_dir()} or PATH: {INSTALL_HINT}"
    if in_ci():
        pytest.fail(f"In CI a missing tool is a failure, never a silent skip: {message}",
                    pytrace=False)
    pytest.skip(message)
