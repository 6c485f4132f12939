"""scripts/check-imports.py: every import cycle under src/ fails the lint step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "check-imports.py"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run_check(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(src)], capture_output=True, text=True, check=False
    )


def test_a_lazy_import_back_is_a_cycle(tmp_path: Path) -> None:
    """A module importing another that imports it back inside a function fails, naming both."""
    src = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg.a import x\n",
        },
    )
    done = run_check(src)
    assert done.returncode == 1
    assert "import cycle: pkg.a -> pkg.b -> pkg.a" in done.stderr


def test_a_type_checking_import_counts(tmp_path: Path) -> None:
    """An import under TYPE_CHECKING closes a cycle too, through a relative import."""
    src = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/a.py": "from ..c import C\n",
            "pkg/c.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.sub import a\n"
            ),
        },
    )
    done = run_check(src)
    assert done.returncode == 1
    assert "pkg.c -> pkg.sub.a -> pkg.c" in done.stderr


def test_a_package_importing_its_submodules_is_no_cycle(tmp_path: Path) -> None:
    """A tree without cycles passes, including a package __init__ re-exporting a submodule."""
    src = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "import pkg.b\nA = 1\n",
            "pkg/b.py": "import os\n",
        },
    )
    done = run_check(src)
    assert done.returncode == 0, done.stderr
    assert "0 new cycle(s)" in done.stdout


def test_the_repository_has_no_new_cycle() -> None:
    """src/ itself passes: only the allow-listed cycles, which other #14 branches remove."""
    done = run_check(REPO / "src")
    assert done.returncode == 0, done.stderr
