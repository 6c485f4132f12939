"""bench/ cannot rot: its report logic, and its in-process benchmarks run at a tiny size.

No timing is asserted here (timing lives in `make bench`); only that every benchmark runs,
measures what it claims and reports finite numbers against its baseline.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ sits at the repo root and is not installed
    sys.path.insert(0, str(REPO))

from bench import bench_correlate, bench_emit, bench_intake, procs  # noqa: E402
from bench.__main__ import main, run_one  # noqa: E402
from bench.report import Check, Section, Summary, format_section, percentile, ratio  # noqa: E402
from voiceops.config import load  # noqa: E402

BENCH_MARK_ENV = "VOICEOPS_BENCH_SMOKE_MARK"  # inherited by everything the bench starts


def _assert_measured(section: Section) -> None:
    assert not section.error and not section.skipped, format_section(section)
    assert section.checks
    for check in section.checks:
        assert math.isfinite(check.value) and check.value >= 0, format_section(section)
        assert math.isfinite(check.baseline) and check.baseline > 0, format_section(section)


def test_percentile_interpolates_between_ranks() -> None:
    """p50 of an even count is the midpoint; p0 and p100 are the extremes."""
    samples = [4.0, 1.0, 3.0, 2.0]
    assert percentile(samples, 50) == 2.5
    assert (percentile(samples, 0), percentile(samples, 100)) == (1.0, 4.0)
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_ratio_handles_a_zero_baseline() -> None:
    """A zero baseline gives an infinite ratio (a failure), unless the value is zero too."""
    assert ratio(6.0, 2.0) == 3.0
    assert ratio(1.0, 0.0) == math.inf and ratio(0.0, 0.0) == 0.0


def test_check_passes_within_ratio_plus_slack_only() -> None:
    """value <= max_ratio * baseline + slack passes; just above fails; NaN/inf fail."""
    assert Check("x", 7.0, 2.0, "ms", 3.0, slack=1.0).passed
    assert not Check("x", 7.01, 2.0, "ms", 3.0, slack=1.0).passed
    assert not Check("x", math.inf, 2.0, "ms", 3.0).passed
    assert not Check("x", math.nan, 2.0, "ms", 3.0).passed


def test_report_lines_name_ratio_target_and_verdict() -> None:
    """A check line shows both numbers, the ratio, the target with its slack, and PASS/FAIL."""
    text = format_section(Section("t", (Check("p50", 3.0, 1.0, "ms", 2.0, slack=0.5),)))
    assert "FAIL  p50: 3.00 ms vs baseline 1.00 ms = 3.00x (target <= 2x + 0.500 ms)" in text


def test_summary_exit_code_follows_misses_and_errors() -> None:
    """Exit 0 when every check passes; 1 on a missed target or a broken benchmark."""
    ok = Section("a", (Check("c", 1.0, 1.0, "ns", 2.0),))
    assert Summary([ok]).exit_code == 0
    assert Summary([ok, Section("b", (Check("c", 5.0, 1.0, "ns", 2.0),))]).exit_code == 1
    broken = Summary([ok, Section("b", error="boom")])
    assert broken.exit_code == 1 and "missed: b: error" in broken.format()


def test_a_benchmark_that_raises_becomes_a_failed_section() -> None:
    """One broken benchmark is reported with its reason instead of crashing the run."""

    def boom(quick: bool) -> Section:
        raise RuntimeError("emulator did not start")

    section = run_one("dispatch", boom, quick=True)
    assert not section.passed and "emulator did not start" in section.error


def test_unknown_benchmark_name_is_a_usage_error() -> None:
    """--only with a name that does not exist exits 2 (argparse) before running anything."""
    with pytest.raises(SystemExit) as exc:
        main(["--only", "nope"])
    assert exc.value.code == 2


def test_emit_benchmark_runs_tiny() -> None:
    """The emit benchmark delivers every timed send and reports finite ratios."""
    section = bench_emit.measure(bench_emit.EmitSizes(ops=16, repeats=1, stalled_ops=64))
    _assert_measured(section)
    assert any("64 emits" in line for line in section.info)


def test_correlator_lifecycles_observe_every_join() -> None:
    """The correlator leg and its dict baseline both see each dispatch through to its join."""
    ids = bench_correlate.make_ids(300)
    assert bench_correlate.correlator_lifecycle(ids) == 300
    assert bench_correlate.dict_lifecycle(ids) == 300


def test_correlate_benchmark_runs_tiny() -> None:
    """The correlator benchmark (time, scaling, memory, expiry) runs at a tiny size."""
    _assert_measured(bench_correlate.measure(bench_correlate.CorrelateSizes(500, 1)))


def test_intake_benchmark_runs_tiny_through_the_real_event_socket() -> None:
    """The intake benchmark receives every datagram and the monitor observes every join."""
    _assert_measured(bench_intake.measure(bench_intake.IntakeSizes(dispatches=20, repeats=1)))


def test_bench_proxy_config_is_valid_voiceops_config(tmp_path: Path) -> None:
    """The dispatch benchmark's proxy config loads, on loopback port 0, rate limit on."""
    cfg = load(procs.write_proxy_config(tmp_path / "proxy.toml", "ws://127.0.0.1:7880"))
    assert cfg.proxy.listen == "127.0.0.1:0" and cfg.agent.name == procs.AGENT
    assert cfg.proxy.rate_limit_per_minute > 0


def test_bench_supervisor_and_replace_configs_are_valid(tmp_path: Path) -> None:
    """The supervisor and replacement benchmarks' configs load: 16 fake workers with a
    standby and the proxy on loopback; one real worker with a standby, no proxy."""
    from bench import bench_replace, bench_supervisor
    from voiceops.testing.livekit.pytest_plugin import LiveKitServer

    sup = load(bench_supervisor.write_config(tmp_path / "s.toml", "ws://127.0.0.1:7880",
                                             9310, 9000))
    assert sup.workers.count == 16 and sup.workers.standby == 1
    assert sup.workers.command and sup.proxy.listen.startswith("127.0.0.1:")
    lk = LiveKitServer(url="ws://127.0.0.1:7880", http_url="http://127.0.0.1:7880",
                       api_key="devkey", api_secret="secret", is_emulator=True,
                       faults=None)  # type: ignore[arg-type]
    rep = load(bench_replace.config(tmp_path / "r.toml", lk, metrics_port=9310, standby=1))
    assert rep.workers.count == 1 and rep.workers.standby == 1 and not rep.proxy.enabled
    assert bench_replace.config(tmp_path / "c.toml", lk, metrics_port=9310, standby=0)


def _processes_with_env(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(BENCH_MARK_ENV) == marker:
                found.append(proc)
    return found


@pytest.mark.process
@pytest.mark.livekit
def test_quick_dispatch_bench_runs_end_to_end_and_leaves_nothing_behind() -> None:
    """`python -m bench --quick --only dispatch` starts the emulator and the real proxy,
    reports its six ratio lines with a verdict, and leaves no process behind."""
    marker = uuid.uuid4().hex
    env = {**os.environ, BENCH_MARK_ENV: marker}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "dispatch"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    out = done.stdout
    assert done.returncode in (0, 1), out + done.stderr  # 1 = a target missed, not a crash
    assert "benchmark error" not in out, out
    assert sum(line.lstrip().startswith(("PASS", "FAIL")) for line in out.splitlines()) == 6, out
    assert "dispatch_created events received from the proxy: 1554/1554" in out, out
    _, alive = psutil.wait_procs(_processes_with_env(marker), timeout=10)
    assert not alive, f"bench left processes behind: {alive}"


def test_handler_bench_report_counts_lost_answers() -> None:
    """The handler bench's report: finite checks against its baselines; a lost answer fails."""
    from bench import bench_handler

    sizes = bench_handler.HandlerSizes(probes=3, warmup=0)
    fine = bench_handler._section({"idle": [0.002, 0.003, 0.004], "busy": [0.05, 0.09, 0.1]}, sizes)
    _assert_measured(fine)
    assert fine.passed, format_section(fine)
    lost = bench_handler._section({"idle": [0.002, 0.003, 0.004], "busy": [0.05, None, 0.1]},
                                  sizes)
    assert not lost.passed and "busy 1" in format_section(lost)


def test_media_bench_pure_parts() -> None:
    """The media bench's loss, latency matching and capacity rule count what they claim."""
    from bench import bench_media, media_client

    assert bench_media.lost_fraction(100, 99) == pytest.approx(0.01)
    assert bench_media.lost_fraction(100, 101) == 0.0 and bench_media.lost_fraction(0, 0) == 0.0
    # Each heard onset pairs with the last burst sent before it, within one burst period.
    assert media_client.latencies_s([1.0, 1.5, 2.0], [1.08, 1.59, 3.0]) == pytest.approx(
        [0.08, 0.09]
    )
    steps = [
        bench_media.Step(1, 0.0, 10),
        bench_media.Step(2, 0.5, 20),
        bench_media.Step(4, 3.0, 40),
    ]
    assert bench_media.carried(steps) == 2
    behind = [bench_media.Step(1, 0.0, 10), bench_media.Step(2, 0.0, 20, realtime_pct=80.0)]
    assert bench_media.carried(behind) == 1
    assert bench_media.carried([bench_media.Step(1, 5.0, 10)]) == 0
    heard = media_client.Heard(count_only=True)
    # Frames at RTP positions 0, 1, 3 (2 was lost) and 4 (arrived after the window).
    heard.arrivals = [(1.0, 960, 0), (1.2, 960, 960), (1.9, 960, 2880), (2.5, 960, 3840)]
    assert heard.frames_between(1.0, 2.0) == 3.0 and heard.expected_between(1.0, 2.0) == 4.0
    assert heard.expected_between(5.0, 6.0) == 0.0


def test_voice_bench_parts_measure_and_report() -> None:
    """The voice bench's in-process parts measure real audio (silero's end-of-speech delay on
    piper speech is its silence window, not zero) and its section compares p50 with the parts."""
    import asyncio

    import numpy as np

    from bench import bench_voice
    from voiceops.agent import providers

    warm = providers.prewarm_engines(providers.OFFLINE_VOICE)
    assert warm.piper is not None
    speech = np.frombuffer(bench_voice.offline.piper_pcm(warm.piper, bench_voice.QUESTION),
                           dtype=np.int16)
    delay = asyncio.run(bench_voice.vad_delay_s(warm.vad, speech, warm.piper.sample_rate_hz))
    assert 0.3 < delay < 1.5
    ttfb = asyncio.run(bench_voice.tts_ttfb_s(warm.piper))
    assert 0 < ttfb < 10
    section = bench_voice._section([2.0, 2.2, 1.8], [(0.6, 0.3, 0.0, 0.1), (0.6, 0.4, 0.0, 0.2),
                                                     (0.6, 0.3, 0.1, 0.1)], "agent side: -")
    (check,) = section.checks
    assert (check.value, round(check.baseline, 6), check.max_ratio) == (2.0, 1.1, 1.3)
    assert not check.passed
    assert "p95" in section.info[0] and "STT 0.30" in section.info[1]


def test_burst_bench_config_and_report(tmp_path: Path) -> None:
    """The burst benchmark's config loads (2 workers counting jobs, the placeholder agent), and
    its report fails a burst slower than 1.2x the SDK joins, a worker above ceil(n/2) + 2, and
    an emulator whose 20 concurrent SDK joins take over 1.5 s at p95."""
    from collections import Counter

    from bench import bench_burst
    from voiceops.testing.livekit.pytest_plugin import LiveKitServer

    lk = LiveKitServer(url="ws://127.0.0.1:7880", http_url="http://127.0.0.1:7880",
                       api_key="devkey", api_secret="secret", is_emulator=True,
                       faults=None)  # type: ignore[arg-type]
    cfg = load(bench_burst.config(tmp_path / "b.toml", lk, 9310))
    assert cfg.workers.count == 2 and cfg.workers.max_jobs == 20 and cfg.workers.standby == 0
    assert cfg.workers.entrypoint == "voiceops.agent.basic:entrypoint"
    sizes = bench_burst.BurstSizes(joins=20, rounds=1)
    fast = bench_burst.Measured([1.0] * 20, [1.1] * 20, [0.5] * 20, [0.6] * 20,
                                [Counter(a=12, b=8)])
    assert all(c.passed for c in bench_burst._section(fast, sizes).checks)
    slow = bench_burst.Measured([1.6] * 20, [2.0] * 20, [0.5] * 20, [0.6] * 20,
                                [Counter(a=13, b=7)])
    assert not any(c.passed for c in bench_burst._section(slow, sizes).checks)
