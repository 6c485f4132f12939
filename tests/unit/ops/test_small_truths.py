"""Small truths an operator meets in the first hour: the README, the faults JSON, the Makefile
and the tools installer say and do the same thing."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import pytest

from voiceops.cli.app import build_parser
from voiceops.emulator import cli as emulator_cli
from voiceops.emulator.faults import Faults, parse_faults
from voiceops.testing.tools import require_tool

REPO = Path(__file__).resolve().parents[3]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_fault_names() -> set[str]:
    """The fault names in the emulator's fault table (rows like | `"name": …` | effect |)."""
    section = README[README.index("## The LiveKit emulator"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    return set(re.findall(r'^\| `"([a-z_]+)"', section, flags=re.MULTILINE))


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
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert not ours.exists() and theirs.exists()
    assert not (tools / "outside-files").exists()
    assert str(ours) in done.stdout


def test_make_clean_runs_the_installer_clean_step() -> None:
    """`make clean` removes what install-tools.sh put under /usr/share before deleting .tools."""
    plan = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True,
                          timeout=30, check=False).stdout
    assert "install-tools.sh --clean" in plan
    assert plan.index("install-tools.sh --clean") < plan.index("rm -rf")


def test_first_setup_says_what_it_does_and_shows_progress() -> None:
    """The venv step announces itself and lets pip list packages (no -q on the big install)."""
    plan = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False).stdout
    assert "installing voiceops and its dependencies" in plan
    big = next(line for line in plan.splitlines() if "install" in line and "-e " in line)
    assert " -q " not in big


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"}


def test_every_cli_flag_is_in_the_readme() -> None:
    """Each subcommand's flags appear in its row of the README's command table or in the
    sentence about the shared control options; the emulator's in its own section."""
    commands = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    shared = commands.split("also take", 1)[1].split("\n\n", 1)[0]
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, parser in sub.choices.items():
        if name == "emulator":
            continue
        row = next(line for line in commands.splitlines() if line.startswith(f"| `voiceops {name}"))
        missing += [f"{name} {f}" for f in _flags(parser) if f"`{f}" not in row
                    and f"[{f}" not in row and f"`{f}" not in shared]
    emulator = README.split("## The LiveKit emulator", 1)[1].split("\n## ", 1)[0]
    missing += [f"emulator {f}" for f in _flags(emulator_cli.build_parser())
                if f not in emulator]
    assert not missing, f"flags missing from the README: {missing}"


@pytest.mark.tools
def test_install_tools_lists_what_it_writes_outside_and_clean_removes_it(tmp_path: Path) -> None:
    """With the templates' directory missing, install-tools creates it, lists every file and
    directory it made in .tools/outside-files, and --clean leaves nothing of it behind."""
    # The installed tools, borrowed by symlinks: nothing is downloaded again.
    unpacked = Path(require_tool("promtool")).resolve().parents[2]  # <tools>/root
    if not (unpacked / "usr/share/prometheus/alertmanager/default.tmpl").is_file():
        pytest.skip("the tools came from apt-get install (no unpacked templates to copy)")
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    (tools / "root").symlink_to(unpacked)
    for tool in (unpacked.parent / "bin").iterdir():
        (tools / "bin" / tool.name).symlink_to(tool.resolve())
    target = tmp_path / "share" / "prometheus" / "alertmanager"
    env = {**os.environ, "VOICEOPS_TOOLS_DIR": str(tools),
           "VOICEOPS_AM_TEMPLATE_DIR": str(target)}
    script = str(REPO / "scripts" / "install-tools.sh")
    done = subprocess.run(
        ["bash", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = (tools / "outside-files").read_text().split()
    assert str(target / "default.tmpl") in listed and f"{tmp_path / 'share'}/" in listed
    assert (target / "default.tmpl").is_file()
    done = subprocess.run(["bash", script, "--clean"], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0 and not (tmp_path / "share").exists(), done.stdout
