"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, print ratios against
baselines measured in the same run, exit 1 when any target is missed (2 on bad arguments)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable

from .report import Section, Summary, format_section

Runner = Callable[[bool], Section]


def _registry() -> dict[str, tuple[str, Runner]]:
    """Benchmarks by name, imported lazily so one broken import fails only its own section."""

    def lazy(module: str) -> Runner:
        def run(quick: bool) -> Section:
            mod = __import__(f"bench.{module}", fromlist=["run"])
            return mod.run(quick)  # type: ignore[no-any-return]

        return run

    return {
        "emit": ("event emit cost", lazy("bench_emit")),
        "correlate": ("monitor correlator", lazy("bench_correlate")),
        "intake": ("supervisor event intake", lazy("bench_intake")),
        "dispatch": ("dispatch overhead", lazy("bench_dispatch")),
        "media": ("media forwarding", lazy("bench_media")),
        "voice": ("voice response", lazy("bench_voice")),
        "handler": ("JobRequest answer latency", lazy("bench_handler")),
        "supervisor": ("supervisor overhead", lazy("bench_supervisor")),
        "replace": ("worker replacement", lazy("bench_replace")),
        "burst": ("bursts", lazy("bench_burst")),
    }


def run_one(title: str, runner: Runner, *, quick: bool) -> Section:
    """One benchmark; an exception becomes a failed section, never a crash of the rest."""
    try:
        return runner(quick)
    except Exception as exc:  # reported as a failure with its reason, then the next one runs
        return Section(title, error=f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    benches = _registry()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs (under a minute in total), for smoke tests")
    parser.add_argument("--only", action="append", choices=sorted(benches), metavar="NAME",
                        help=f"run only these (repeatable): {', '.join(benches)}")
    args = parser.parse_args(argv)
    # PyJWT warns on every token signed with the emulator's short --dev secret.
    warnings.filterwarnings("ignore", message="The HMAC key is")
    summary = Summary()
    started = time.monotonic()
    for name in args.only or list(benches):
        title, runner = benches[name]
        t0 = time.monotonic()
        section = run_one(title, runner, quick=args.quick)
        summary.sections.append(section)
        print(format_section(section), flush=True)
        print(f"        ({time.monotonic() - t0:.1f} s)", flush=True)
    mode = " (quick)" if args.quick else ""
    print(summary.format(f" in {time.monotonic() - started:.0f} s{mode}"), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
