"""Issue 11, item 6: a reload never takes a running process down."""

from __future__ import annotations

import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import StartSupervisor

from voiceops.testing.harness import FAKE, free_port, wait_for

pytestmark = pytest.mark.process


def config_error_program(line: str) -> list[str]:
    """A child that reports its own config error the way ours do, and exits 78."""
    return [sys.executable, "-c",
            f"import sys; print({line!r}, file=sys.stderr); sys.exit(78)"]


BAD_WORKER = config_error_program("voiceops.worker: workers.entrypoint: cannot import 'nope'")
BAD_PROXY = config_error_program("voiceops proxy: proxy.allowed_origins: not for this proxy")


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return resp.status == 200


def pids(sup: Any) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in (sup.status() or {}).get("processes", [])}


def set_key(cfg: Path, section: str, key: str, value: Any) -> None:
    """Replace (or add) ``key`` in ``[section]`` of the harness's simple TOML."""
    lines = cfg.read_text().splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [ln for ln in lines[start + 1:end] if not ln.startswith(f"{key} = ")]
    lines[start + 1:end] = [*body, f"{key} = {json.dumps(value)}"]
    cfg.write_text("\n".join(lines) + "\n")


def start(start_supervisor: StartSupervisor, tmp_path: Path) -> tuple[Any, int, Path]:
    keys = tmp_path / "keys"
    keys.write_text("key-0123456789abcdef\n")
    port = free_port()
    sup = start_supervisor({"count": 2, "command": [*FAKE], "backoff_base_s": 0.2},
                           proxy={"listen": f"127.0.0.1:{port}", "api_keys_file": str(keys)})
    sup.wait_ready_workers(2)
    wait_for(lambda: (sup.status() or {}).get("ready"), 40, "proxy and workers ready")
    assert healthy(port)
    return sup, port, keys


def test_reload_with_unreadable_secret_files_is_refused(start_supervisor: StartSupervisor,
                                                        tmp_path: Path) -> None:
    """SIGHUP with a missing or non-UTF-8 proxy.api_keys_file, or a taken new port, is refused
    naming the key; every process keeps its pid and the proxy keeps answering."""
    sup, port, keys = start(start_supervisor, tmp_path)
    before = pids(sup)
    bad = tmp_path / "bad-keys"
    bad.write_bytes(b"\xff\xfe")
    for value, refusal in ((str(tmp_path / "absent"), "proxy.api_keys_file: cannot read"),
                           (str(bad), "proxy.api_keys_file: " + str(bad) + " is not UTF-8")):
        set_key(sup.config, "proxy", "api_keys_file", value)
        sup.signal(signal.SIGHUP)
        wait_for(lambda r=refusal: r in sup.stderr(), 20, f"reload refused: {refusal}")
        assert healthy(port)
    set_key(sup.config, "proxy", "api_keys_file", str(keys))
    set_key(sup.config, "metrics", "listen", f"127.0.0.1:{port}")  # the proxy's own port
    sup.signal(signal.SIGHUP)
    wait_for(lambda: f"metrics.listen: 127.0.0.1:{port} is already in use" in sup.stderr(), 20,
             "reload refused: a taken port")
    assert pids(sup) == before and healthy(port)
    assert sup.metric("voiceops_process_restarts_total", process="proxy", reason="crash") == 0


def test_replacements_failing_their_start_leave_the_old_processes_serving(
        start_supervisor: StartSupervisor, tmp_path: Path) -> None:
    """A reload whose new proxy and workers exit 78 (their own config errors): the old ones
    keep serving, nothing is retried as a crash, and WorkerCrashLoop names the key."""
    sup, port, _ = start(start_supervisor, tmp_path)
    before = pids(sup)
    set_key(sup.config, "workers", "command", BAD_WORKER)
    set_key(sup.config, "proxy", "command", BAD_PROXY)
    sup.signal(signal.SIGHUP)
    wait_for(lambda: len(sup.log_matches(r"rollout_failed process=\S+")) >= 3, 60,
             "all three replacements failed")
    assert pids(sup) == before and healthy(port)
    st = sup.status()
    assert all(p["state"] == "ready" for p in st["processes"]), st["processes"]
    assert sup.log_matches(r"rollout_failed process=proxy .*proxy\.allowed_origins")
    alert = wait_for(lambda: next((a for a in (sup.status() or {}).get("alerts", [])
                                   if a["alert"] == "WorkerCrashLoop"), None), 10,
                     "WorkerCrashLoop naming the key")
    assert "config error" in alert["diagnosis"] and (
        "workers.entrypoint" in alert["diagnosis"] or "proxy.allowed_origins" in alert["diagnosis"]
    )
    assert sup.metric("voiceops_process_restarts_total", process="worker-0", reason="crash") == 0


def test_a_child_exiting_78_is_held_not_retried(start_supervisor: StartSupervisor,
                                                tmp_path: Path) -> None:
    """A worker that exits 78 at its first start is kept down (no backoff retries) with its
    config error in status; fixing the config and reloading brings it up."""
    sup = start_supervisor({"count": 1, "command": BAD_WORKER, "backoff_base_s": 0.2})
    held = wait_for(lambda: next((p for p in sup.procs() if p["state"] == "parked"), None), 20,
                    "the worker held")
    assert held["last_exit"] == "config(78)" and held["next_start_in_s"] is None
    assert held["config_error"] == "workers.entrypoint: cannot import 'nope'"
    assert len(sup.log_matches(r"process_started process=worker-0")) == 1
    assert sup.log_matches(r"process_held process=worker-0 config_error=")
    set_key(sup.config, "workers", "command", FAKE)
    sup.signal(signal.SIGHUP)
    sup.wait_ready_workers(1)


def test_proxy_restart_is_replacement_first(start_supervisor: StartSupervisor,
                                            tmp_path: Path) -> None:
    """`voiceops restart proxy`: the new proxy listens beside the old one (SO_REUSEPORT) before
    the old one drains, so /healthz answers throughout and the pid changes."""
    sup, port, _ = start(start_supervisor, tmp_path)
    old = pids(sup)["proxy"]
    code, body = sup.request("POST", "/restart", {"name": "proxy"})
    assert code == 200, body
    answers: list[bool] = []

    def replaced() -> bool:
        answers.append(healthy(port))
        st = sup.status() or {}
        procs = [p for p in st.get("processes", []) if p["kind"] == "proxy"]
        return len(procs) == 1 and procs[0]["pid"] != old and procs[0]["state"] == "ready"
    wait_for(replaced, 40, "the proxy replaced", interval_s=0.05)
    assert answers and all(answers)
    assert sup.metric("voiceops_process_restarts_total", process="proxy", reason="manual") == 1
