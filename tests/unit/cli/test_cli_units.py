"""The CLI's pure parts: parser table, socket path rules, status formatting, exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from voiceops.cli.app import build_parser, main
from voiceops.cli.common import socket_path
from voiceops.cli.status import format_duration, format_status
from voiceops.config import Config, ControlConfig
from voiceops.supervisor.control import default_socket_path


def test_every_subcommand_has_a_handler() -> None:
    """Each registered subcommand parses and carries its handler."""
    parser = build_parser()
    for argv in (["run"], ["status"], ["scale", "2"], ["restart", "all"], ["drain", "worker-0"]):
        assert callable(parser.parse_args(argv).handler), argv


def test_scale_needs_an_integer(capsys: pytest.CaptureFixture[str]) -> None:
    """`scale x` is a usage error (exit 2) naming the argument."""
    with pytest.raises(SystemExit) as exc:
        main(["scale", "x"])
    assert exc.value.code == 2
    assert "N" in capsys.readouterr().err


@pytest.mark.parametrize(("cfg", "env", "want"), [
    (Config(control=ControlConfig(socket="/srv/vo.sock")), {"RUNTIME_DIRECTORY": "/run/x"},
     Path("/srv/vo.sock")),
    (Config(), {"RUNTIME_DIRECTORY": "/run/voiceops:/run/other"},
     Path("/run/voiceops/control.sock")),
    (Config(), {}, Path("run/control.sock")),
])
def test_default_socket_path_rules(cfg: Config, env: dict[str, str], want: Path) -> None:
    """control.socket wins, then the first $RUNTIME_DIRECTORY, then ./run/control.sock."""
    assert default_socket_path(cfg, env) == want


def test_socket_option_overrides_config(tmp_path: Path) -> None:
    """--socket is used as given, without reading any config."""
    args = argparse.Namespace(socket="/x/c.sock", config=str(tmp_path / "missing.toml"))
    assert socket_path(args, {}) == Path("/x/c.sock")


def test_socket_from_voiceops_config_env(tmp_path: Path) -> None:
    """$VOICEOPS_CONFIG is read to find control.socket."""
    cfg = tmp_path / "v.toml"
    cfg.write_text('[control]\nsocket = "/y/c.sock"\n')
    args = argparse.Namespace(socket=None, config=None)
    assert socket_path(args, {"VOICEOPS_CONFIG": str(cfg)}) == Path("/y/c.sock")


def test_missing_explicit_config_exits_78(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An explicit --config that does not exist is a config error (78), not a crash."""
    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 78
    assert "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0, "0s"), (59.9, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"),
    (86399, "23h59m"), (86400 * 3 + 3600 * 4, "3d04h"),
])
def test_format_duration(seconds: float | None, text: str) -> None:
    """Durations print compactly at the right unit."""
    assert format_duration(seconds) == text


def test_format_status_aligns_and_tolerates_missing_fields() -> None:
    """Columns align across rows, and absent values print as '-'."""
    status = {"state": "stopping", "ready": False,
              "pool": {"desired": 1, "ready": 0, "parked": 1, "unhealthy": True},
              "processes": [{"name": "worker-10", "state": "parked", "pss_bytes": 3 * 2**20},
                            {"name": "proxy", "state": "ready", "pid": 7, "uptime_s": 5}],
              "alerts": []}
    lines = format_status(status, now_s=0.0).splitlines()
    assert lines[1].split() == ["worker-10", "parked", "-", "-", "-", "3.0", "-"]
    assert lines[0].index("STATE") == lines[1].index("parked") == lines[2].index("ready")
    assert lines[-2] == ("pool: 0/1 workers ready, 1 parked, UNHEALTHY; "
                         "supervisor stopping, NOT ready")
    assert lines[-1] == "alerts: none"


def test_a_running_sandbox_is_recognised_by_its_emulator() -> None:
    """`voiceops check` treats a supervisor with an emulator child as a sandbox, others not."""
    from voiceops.cli.check import sandbox_running

    assert sandbox_running({"processes": [{"name": "emulator", "kind": "emulator"}]})
    assert not sandbox_running({"processes": [{"name": "worker-0", "kind": "worker"}]})
    assert not sandbox_running(None)
