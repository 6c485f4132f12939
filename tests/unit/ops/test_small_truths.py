"""Small truths an operator meets in the first hour: the README, the faults JSON, the Makefile
and the tools installer say and do the same thing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from voiceops.emulator.faults import Faults, parse_faults

REPO = Path(__file__).resolve().parents[3]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_fault_names() -> set[str]:
    """The fault names in the README's fault table (rows like | `"name": …` | effect |)."""
    return set(re.findall(r'^\| `"([a-z_]+)"', README, flags=re.MULTILINE))


def test_faults_json_lists_every_fault_the_readme_lists() -> None:
    """GET/POST /emulator/faults answer with every fault of the README's table, drop_workers too."""
    listed = readme_fault_names()
    assert "drop_workers" in listed and len(listed) >= 6
    assert set(Faults().to_json()) == listed
    assert set(parse_faults({name: Faults().to_json()[name] for name in listed})) == listed


def test_install_tools_clean_removes_only_what_it_recorded(tmp_path: Path) -> None:
    """--clean deletes the files (and directories) the installer listed as created outside the
    checkout, and nothing else."""
    tools = tmp_path / "tools"
    tools.mkdir()
    outside = tmp_path / "usr-share" / "prometheus" / "alertmanager"
    outside.mkdir(parents=True)
    ours, theirs = outside / "default.tmpl", outside / "site.tmpl"
    ours.write_text("x")
    theirs.write_text("y")
    (tools / "outside-files").write_text(f"{ours}\n")
    env = {**os.environ, "VOICEOPS_TOOLS_DIR": str(tools)}
    done = subprocess.run(["bash", str(REPO / "scripts" / "install-tools.sh"), "--clean"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert not ours.exists() and theirs.exists()
    assert not (tools / "outside-files").exists()
    assert str(ours) in done.stdout


def test_make_clean_runs_the_installer_clean_step() -> None:
    """`make clean` removes what install-tools.sh put under /usr/share before deleting .tools."""
    plan = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True,
                          timeout=30).stdout
    assert "install-tools.sh --clean" in plan
    assert plan.index("install-tools.sh --clean") < plan.index("rm -rf")


def test_first_setup_says_what_it_does_and_shows_progress() -> None:
    """The venv step announces itself and lets pip list packages (no -q on the big install)."""
    plan = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=REPO,
                          capture_output=True, text=True, timeout=30).stdout
    assert "installing voiceops and its dependencies" in plan
    big = next(line for line in plan.splitlines() if "install" in line and "-e " in line)
    assert " -q " not in big
