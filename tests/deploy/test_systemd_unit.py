"""The systemd unit: clean under systemd-analyze (systemd 252), hardened, consistent with config."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from voiceops import config as vconfig
from voiceops.testing.tools import REPO_ROOT, require_tool

UNIT_PATH = REPO_ROOT / "systemd" / "voiceops.service"
ENV_EXAMPLE = REPO_ROOT / "systemd" / "voiceops.env.example"
MAX_EXPOSURE = 2.0
_UNITS_S = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "ms": 0.001}


def parse_unit(text: str) -> dict[str, list[str]]:
    """``Section.Key`` → every value, in order (systemd keys may repeat)."""
    section, out = "", {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def timespan_s(value: str) -> float:
    """A systemd time span ("660s", "11min", "1min 30s", "600") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts and "".join(f"{n}{u}" for n, u in parts) == value.replace(" ", ""), value
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return parse_unit(UNIT_PATH.read_text())


def one(unit: dict[str, list[str]], key: str) -> str:
    values = unit.get(key, [])
    assert len(values) == 1, f"{key}: expected exactly one value, got {values}"
    return values[0]


def runnable_copy(tmp_path: Path, extra: str = "") -> Path:
    """The unit with ExecStart's python replaced by this interpreter (verify checks it exists)."""
    text = UNIT_PATH.read_text()
    text, count = re.subn(r"^ExecStart=\S+/python3?\b", f"ExecStart={sys.executable}", text,
                          flags=re.MULTILINE)
    assert count == 1, "ExecStart must run a venv python directly"
    if extra:
        text = text.replace("[Service]\n", f"[Service]\n{extra}\n", 1)
    path = tmp_path / "voiceops.service"
    path.write_text(text)
    return path


def run_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.tools
def test_verify_is_clean(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit with exit 0 and not a single warning."""
    result = run_analyze("verify", "--man=no", str(runnable_copy(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"verify warned (it exits 0 on unknown keys):\n{result.stderr}"


@pytest.mark.tools
def test_verify_flags_keys_systemd_252_lacks(tmp_path: Path) -> None:
    """The stderr check bites: RestartSteps (systemd >= 254) is reported, so the unit omits it."""
    result = run_analyze("verify", "--man=no", str(runnable_copy(tmp_path, "RestartSteps=5")))
    assert "RestartSteps" in result.stderr


@pytest.mark.tools
def test_security_exposure_within_budget(tmp_path: Path) -> None:
    """systemd-analyze security --offline rates the unit at exposure <= 2.0."""
    result = run_analyze("security", "--offline=true", "--threshold=20", "--no-pager",
                         str(runnable_copy(tmp_path)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_stop_timeout_covers_the_drain(unit: dict[str, list[str]]) -> None:
    """TimeoutStopSec exceeds the drain budget plus a kill grace: systemd never cuts a drain."""
    stop_s = timespan_s(one(unit, "Service.TimeoutStopSec"))
    shipped = vconfig.load(REPO_ROOT / "config" / "voiceops.toml").workers.drain_timeout_s
    default = vconfig.WorkersConfig().drain_timeout_s
    assert stop_s >= max(shipped, default) + 30


def test_restart_policy(unit: dict[str, list[str]]) -> None:
    """Restarts on failure but never on a config error (exit 78), within a start limit."""
    assert one(unit, "Service.Restart") == "on-failure"
    prevent = one(unit, "Service.RestartPreventExitStatus").split()
    assert str(vconfig.EX_CONFIG) in prevent and vconfig.EX_CONFIG == 78
    assert int(one(unit, "Unit.StartLimitBurst")) > 1
    assert timespan_s(one(unit, "Unit.StartLimitIntervalSec")) > 0


def test_process_contract(unit: dict[str, list[str]]) -> None:
    """Type=notify, venv python as main PID, mixed kill, watchdog, HUP reload, OOM continue."""
    argv = shlex.split(one(unit, "Service.ExecStart"))
    assert re.fullmatch(r"/\S+/python3?", argv[0]) and argv[1:4] == ["-m", "voiceops", "run"]
    expected = {"Type": "notify", "NotifyAccess": "main", "KillMode": "mixed",
                "ExecReload": "/bin/kill -HUP $MAINPID", "OOMPolicy": "continue",
                "RuntimeDirectory": "voiceops"}
    for key, value in expected.items():
        assert one(unit, f"Service.{key}") == value, key
    assert 0 < timespan_s(one(unit, "Service.WatchdogSec")) <= 60
    assert int(one(unit, "Service.LimitNOFILE")) >= 65536


def test_credentials_match_the_config_loader(unit: dict[str, list[str]], tmp_path: Path) -> None:
    """Every LoadCredential name is one voiceops.config reads from $CREDENTIALS_DIRECTORY."""
    names = {v.split(":", 1)[0] for v in unit["Service.LoadCredential"]}
    assert names == {"livekit-api-secret", "letta-api-key"}
    for name in names:
        (tmp_path / name).write_text(f"value-of-{name}\n")
    secrets = vconfig.load_secrets(vconfig.from_dict({}), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert secrets.livekit_api_secret == "value-of-livekit-api-secret"
    assert secrets.letta_api_key == "value-of-letta-api-key"


def test_env_example_sets_no_secret() -> None:
    """The env example documents variables but ships no value for any of them."""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"uncommented setting in the example: {line!r}")
