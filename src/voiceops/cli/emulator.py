"""``voiceops emulator ...``: the bundled LiveKit emulator alone, which owns its flags."""

from __future__ import annotations

from collections.abc import Sequence

from voiceops.cli.common import SubParsers


def add_emulator(sub: SubParsers) -> None:
    """Listed for help only: :func:`voiceops.cli.app.main` hands ``emulator ...`` to :func:`run`."""
    sub.add_parser("emulator", add_help=False,
                   help="the bundled LiveKit emulator alone (see `voiceops emulator --help`)")


def run(argv: Sequence[str]) -> int:
    """The emulator's own command line (argparse's REMAINDER cannot pass `--help` through)."""
    from voiceops.emulator.cli import main as emulator_main  # lazy: only this command needs it

    return emulator_main(argv)
